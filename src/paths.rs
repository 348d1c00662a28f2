//! Paths compared as the kernel resolves them (symbolic links aside): a home written
//! `/home/alice/`, `/home//alice` or `/home/x/../alice` is the directory `/home/alice`, and
//! two accounts must never share a directory however its path is spelt.

use std::borrow::Cow;

/// `path` as the kernel resolves it, lexically: `//`, `/./` and a trailing `/` dropped, `..`
/// taking the component before it (never above `/`). Borrowed when already in that form,
/// which every home a sync gives is.
pub fn resolved(path: &str) -> Cow<'_, str> {
    let is_resolved = path == "/"
        || (path.starts_with('/')
            && !path.ends_with('/')
            && !path[1..].split('/').any(|part| part.is_empty() || part == "." || part == ".."));
    if is_resolved {
        return Cow::Borrowed(path);
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    Cow::Owned(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::resolved;
    use std::borrow::Cow;

    #[test]
    fn a_path_is_compared_as_the_kernel_resolves_it() {
        for (path, expected) in [
            ("/home/alice/", "/home/alice"),
            ("/home//alice", "/home/alice"),
            ("//home/alice", "/home/alice"),
            ("/home/./alice", "/home/alice"),
            ("/home/x/../alice", "/home/alice"),
            ("/../home/alice", "/home/alice"),
            ("/home/..", "/"),
            ("home/alice", "/home/alice"),
            ("", "/"),
        ] {
            assert_eq!(resolved(path), expected, "{path}");
        }
        for path in ["/", "/home/alice", "/home/alice.200005", "/home/.alice", "/home/a..b"] {
            assert!(matches!(resolved(path), Cow::Borrowed(p) if p == path), "{path}");
        }
    }

    /// Every string up to 8 bytes over `/ . a`: the result
    /// is resolved (a fixed point, borrowed), borrowed exactly when it is the input, and
    /// what a component stack gives (`..` never above `/`).
    #[test]
    fn resolved_exhaustively() {
        let alphabet = ['/', '.', 'a'];
        let mut paths = vec![String::new()];
        let mut all = vec![String::new()];
        for _ in 0..8 {
            paths = paths
                .iter()
                .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
                .collect();
            all.extend(paths.iter().cloned());
        }
        for path in &all {
            let got = resolved(path);
            let mut stack: Vec<&str> = Vec::new();
            for part in path.split('/') {
                match part {
                    "" | "." => {}
                    ".." => {
                        stack.pop();
                    }
                    part => stack.push(part),
                }
            }
            let expected = format!("/{}", stack.join("/"));
            assert_eq!(got, expected, "{path:?}");
            assert_eq!(matches!(got, Cow::Borrowed(_)), *path == expected, "{path:?}");
            assert!(matches!(resolved(&got), Cow::Borrowed(_)), "{path:?} -> {got:?}");
        }
    }
}
