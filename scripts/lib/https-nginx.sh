# Sourced by scripts/demo-fleet.sh and scripts/bench-fleet.sh: a throwaway CA, a server
# certificate for 127.0.0.1 it signs, and nginx serving a directory over HTTPS on a free
# loopback port, as an administrator would serve published snapshots.
#
#   start_https_nginx DIR ACCESS_LOG_DIRECTIVES WORKER_CONNECTIONS CA_NAME
#
# serves DIR/www; writes DIR/ca.pem (what the hosts trust, `ca_file`), DIR/server.*,
# DIR/nginx.conf and its logs; sets `port` and `nginx_pid` (the caller's trap stops it).
start_https_nginx() {
  local dir=$1 access_log=$2 connections=$3 ca_name=$4 user_line=
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=$ca_name" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 1 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
  mkdir -p "$dir/nginx-tmp"
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  for _attempt in 1 2 3 4 5; do
    port=$(( 20000 + RANDOM % 40000 ))
    cat > "$dir/nginx.conf" <<NGINX
$user_line
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections $connections; }
http {
  $access_log
  client_body_temp_path $dir/nginx-tmp/body; proxy_temp_path $dir/nginx-tmp/proxy;
  fastcgi_temp_path $dir/nginx-tmp/fastcgi; uwsgi_temp_path $dir/nginx-tmp/uwsgi;
  scgi_temp_path $dir/nginx-tmp/scgi;
  types { application/json json; text/plain minisig; }
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $dir/server.pem;
    ssl_certificate_key $dir/server.key;
    root $dir/www;
  }
}
NGINX
    /usr/sbin/nginx -c "$dir/nginx.conf" -p "$dir" &
    nginx_pid=$!
    for _ in $(seq 50); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      kill -0 "$nginx_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$nginx_pid" 2>/dev/null && return 0
    nginx_pid=
  done
  echo "nginx did not start: $(cat "$dir/nginx-error.log")" >&2
  return 1
}
