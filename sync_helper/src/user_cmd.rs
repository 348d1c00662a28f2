//! The `user` commands. Every change goes through [`CacheDir::update`] (lock, load, change,
//! commit); slow work such as hashing a password is done before the lock is taken, so that
//! other writers do not wait for it.

use std::io::Write;
use std::time::Duration;

use dircache::cache::{CacheDir, Db};
use dircache::config::Config;
use dircache::local_accounts::LocalAccounts;
use dircache::names::fold_name;
use dircache::passwords::{hash_password, Secret};
use dircache::user::{AuthMethod, User, UserView};
use dircache::user_edits::{self, EditError, NewUser, UserChanges};

use crate::cli::{AddArgs, DeleteArgs, ListArgs, PasswdArgs, SetArgs, ShowArgs, UserCommand};
use crate::error::CliError;
use crate::output;
use crate::password_input;

/// What every command works with; `now` is read once per run.
pub struct Context {
    pub config: Config,
    pub cache: CacheDir,
    pub now: u64,
}

impl Context {
    pub fn new(config: Config, now: u64) -> Context {
        let cache = CacheDir::new(&config.cache.dir);
        Context { config, cache, now }
    }

    fn update<T>(
        &self,
        change: impl FnOnce(&mut Db) -> Result<T, CliError>,
    ) -> Result<T, CliError> {
        let timeout = Duration::from_secs(self.config.cache.lock_timeout_secs);
        // Sealed for the local files like a sync's generation, so that NSS lookups need not
        // read them after a `user` command either.
        let unix = &self.config.unix;
        let local = LocalAccounts::load(&unix.local_passwd, &unix.local_group)?;
        self.cache.update(timeout, self.now, |db| {
            let result = change(db)?;
            db.local_seal = db.seal_against(&local, self.now);
            Ok(result)
        })
    }
}

pub fn run(ctx: &Context, command: UserCommand, out: &mut impl Write) -> Result<(), CliError> {
    if let Some(snapshot) = &ctx.config.snapshot {
        let refused = match &command {
            UserCommand::Add(_) => Some("add"),
            UserCommand::Passwd(_) => Some("passwd"),
            UserCommand::Delete(_) => Some("delete"),
            UserCommand::Set(args) if !only_enable_or_disable(args) => Some("set"),
            UserCommand::Set(args) => return set_on_replica(ctx, args, out),
            UserCommand::List(_) | UserCommand::Show(_) => None,
        };
        if let Some(command) = refused {
            return Err(CliError::Replica { url: snapshot.url.clone(), command });
        }
    }
    match command {
        UserCommand::List(args) => list(ctx, &args, out),
        UserCommand::Show(args) => show(ctx, &args, out),
        UserCommand::Add(args) => add(ctx, args, out),
        UserCommand::Set(args) => set(ctx, args, out),
        UserCommand::Passwd(args) => passwd(ctx, &args, out),
        UserCommand::Delete(args) => delete(ctx, &args, out),
    }
}

fn list(ctx: &Context, args: &ListArgs, out: &mut impl Write) -> Result<(), CliError> {
    let db = ctx.cache.load()?;
    let mut users: Vec<UserView> = db.users.iter().map(UserView::from).collect();
    users.sort_by(|a, b| {
        fold_name(&a.name).cmp(&fold_name(&b.name)).then_with(|| a.name.cmp(&b.name))
    });
    if args.json { output::write_json(out, &users) } else { output::write_table(out, &users) }
        .map_err(CliError::Output)
}

fn show(ctx: &Context, args: &ShowArgs, out: &mut impl Write) -> Result<(), CliError> {
    let db = ctx.cache.load()?;
    let found = existing(&db, &args.name)?;
    let mut user = UserView::from(found);
    let granted = dircache::grants::granted_to(&db.grants, &found.name);
    user.local_groups = granted.into_iter().map(str::to_string).collect();
    if args.json { output::write_json(out, &user) } else { output::write_details(out, &user) }
        .map_err(CliError::Output)
}

fn add(ctx: &Context, args: AddArgs, out: &mut impl Write) -> Result<(), CliError> {
    if args.auth == AuthMethod::Directory && args.password_stdin {
        return Err(CliError::DirectoryUserWithPassword);
    }
    let local = ctx.config.local_accounts()?;
    let new = NewUser {
        name: args.name,
        full_name: args.full_name,
        emails: args.email,
        auth: args.auth,
        privileges: (!args.privilege.is_empty()).then_some(args.privilege),
        password_hash: None,
    };
    // A trial run on a copy: a taken or invalid name is reported before anyone types a
    // password for it. The real add below checks again under the lock.
    user_edits::add_user(&mut ctx.cache.load()?, &ctx.config, &local, new.clone(), ctx.now)?;
    let password = password_for_add(new.auth, args.password_stdin)?;
    let password_hash = password.map(|p| hash(ctx, &p)).transpose()?;
    let has_password = password_hash.is_some();
    let new = NewUser { password_hash, ..new };
    let (name, uid) = ctx.update(|db| {
        let user = user_edits::add_user(db, &ctx.config, &local, new, ctx.now)?;
        Ok((user.name.clone(), user.uid))
    })?;
    writeln!(out, "added {name} (uid {uid})").map_err(CliError::Output)?;
    if args.auth == AuthMethod::Local && !has_password {
        note_no_password(&name);
    }
    Ok(())
}

/// A person at a terminal is asked; a script that did not pipe a password in gets a user
/// without one, to be given one later.
fn password_for_add(auth: AuthMethod, from_stdin: bool) -> Result<Option<Secret>, CliError> {
    match auth {
        AuthMethod::Directory => Ok(None),
        AuthMethod::Local if from_stdin => password_input::from_stdin().map(Some),
        AuthMethod::Local if password_input::stdin_is_terminal() => {
            password_input::prompt_new().map(Some)
        }
        AuthMethod::Local => Ok(None),
    }
}

fn set(ctx: &Context, args: SetArgs, out: &mut impl Write) -> Result<(), CliError> {
    if let Some(both) = args.grant.iter().find(|p| args.revoke.contains(p)) {
        return Err(CliError::GrantAndRevoke(*both));
    }
    let enabled = match (args.enable, args.disable) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let changes = UserChanges {
        full_name: args.full_name,
        emails: (!args.email.is_empty()).then_some(args.email),
        auth: args.auth,
        grant: args.grant,
        revoke: args.revoke,
        enabled,
    };
    let user = ctx
        .update(|db| Ok(UserView::from(user_edits::set_user(db, &args.name, changes, ctx.now)?)))?;
    writeln!(out, "updated {}", user.name).map_err(CliError::Output)?;
    if enabled == Some(true) && !user.enabled {
        writeln!(
            out,
            "{} came from the directory: the next sync enables it if the directory lists it \
             as enabled (`dircache-sync sync` to do it now)",
            user.name
        )
        .map_err(CliError::Output)?;
    }
    if user.auth == AuthMethod::Local && !user.has_password {
        note_no_password(&user.name);
    }
    Ok(())
}

fn only_enable_or_disable(args: &SetArgs) -> bool {
    args.full_name.is_none()
        && args.email.is_empty()
        && args.auth.is_none()
        && args.grant.is_empty()
        && args.revoke.is_empty()
}

/// On a replica, `--disable` is this host's own overlay (`disabled_by_admin`), which every
/// pull keeps; `--enable` lifts it, and the next pull brings back the publisher's enabled
/// flag (the host does not know it: the overlay replaced it).
fn set_on_replica(ctx: &Context, args: &SetArgs, out: &mut impl Write) -> Result<(), CliError> {
    let name = ctx.update(|db| {
        let user = db.user_mut(&args.name).ok_or_else(|| EditError::NotFound(args.name.clone()))?;
        if args.disable {
            user.enabled = false;
            user.disabled_by_admin = true;
        } else {
            user.disabled_by_admin = false;
        }
        user.updated_at = ctx.now;
        Ok(user.name.clone())
    })?;
    if args.disable {
        writeln!(
            out,
            "disabled {name} on this host; pulls keep it disabled until `user set {name} --enable`"
        )
    } else {
        dircache::snapshot::request_reapply(&ctx.config.cache.dir)?;
        writeln!(
            out,
            "lifted this host's disable of {name}; the next pull (`dircache-sync sync` to do it \
             now) gives it the publisher's enabled flag"
        )
    }
    .map_err(CliError::Output)
}

fn passwd(ctx: &Context, args: &PasswdArgs, out: &mut impl Write) -> Result<(), CliError> {
    // Checked before asking, so nobody types a password that cannot be used.
    let uid = local_user(&ctx.cache.load()?, &args.name)?.uid;
    let password = if args.password_stdin {
        password_input::from_stdin()?
    } else if password_input::stdin_is_terminal() {
        password_input::prompt_new()?
    } else {
        return Err(CliError::NoTerminal);
    };
    let password_hash = hash(ctx, &password)?;
    drop(password);
    let name = ctx.update(|db| {
        // Checked again: another writer may have switched, or deleted and re-added, the
        // user meanwhile.
        let user = local_user(db, &args.name)?;
        if user.uid != uid {
            return Err(EditError::ChangedMeanwhile(user.name.clone()).into());
        }
        let name = user.name.clone();
        user_edits::set_password_hash(db, &name, password_hash, ctx.now)?;
        Ok(name)
    })?;
    writeln!(out, "changed the password of {name}").map_err(CliError::Output)
}

fn delete(ctx: &Context, args: &DeleteArgs, out: &mut impl Write) -> Result<(), CliError> {
    let user = ctx.update(|db| Ok(user_edits::delete_user(db, &args.name, args.force)?))?;
    writeln!(
        out,
        "deleted {} (uid {}) from the cache; their files (such as {}) are kept, and neither uid \
         {} nor that home will be given to anyone else",
        user.name, user.uid, user.home, user.uid
    )
    .map_err(CliError::Output)
}

fn hash(ctx: &Context, password: &Secret) -> Result<String, CliError> {
    hash_password(password, &ctx.config.passwords).map_err(CliError::Hash)
}

fn existing<'a>(db: &'a Db, name: &str) -> Result<&'a User, CliError> {
    db.user(name).ok_or_else(|| EditError::NotFound(name.to_string()).into())
}

fn local_user<'a>(db: &'a Db, name: &str) -> Result<&'a User, CliError> {
    let user = existing(db, name)?;
    if user.auth != AuthMethod::Local {
        return Err(CliError::DirectoryUser { name: user.name.clone() });
    }
    Ok(user)
}

fn note_no_password(name: &str) {
    eprintln!(
        "note: {name} has no password yet and cannot log in until `dircache-sync user passwd \
         {name}`"
    );
}
