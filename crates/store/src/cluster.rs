//! The private PostgreSQL cluster: `initdb` + `pg_ctl start` from the system's PostgreSQL
//! binaries into a directory we own, reachable over a unix socket and `127.0.0.1`. Used by
//! `hubsync demo` (data kept and reused across runs) and by the test kit.
//!
//! When the process runs as root (as CI machines do), the server runs as the `postgres` user
//! through `runuser`, because `initdb` refuses to run as root; the data and socket folders are
//! handed to that user. All calls block; call them from `spawn_blocking` in async code.
//!
//! Layout under the base directory: `data/` (PGDATA, with `server.log`), `run/` (the unix
//! socket), `port` (the port last used, so a restart keeps the same URL).

use std::{
    ffi::OsStr,
    fs,
    io::Write as _,
    net::TcpListener,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use sha2::{Digest as _, Sha256};

use crate::error::StoreError;

/// How to start a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterOptions {
    /// TCP port on 127.0.0.1; `None` reuses the last port or picks a free one.
    pub port: Option<u16>,
    /// Extra server settings passed as `-c name=value` at start (values without spaces).
    pub settings: Vec<(String, String)>,
    /// When the data folder was made by another PostgreSQL major version than the binaries
    /// found: start afresh (deleting it) instead of failing. For throwaway clusters only.
    pub reinit_on_version_change: bool,
}

impl ClusterOptions {
    /// Settings that trade durability for speed: for tests only, never for data you keep.
    pub fn for_tests() -> Self {
        let settings = [
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("max_connections", "500"),
        ];
        Self {
            port: None,
            reinit_on_version_change: true,
            settings: settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}

/// A running PostgreSQL server in a directory hubsync owns. It keeps running when this
/// value is dropped; call [`PrivateCluster::stop`] to stop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateCluster {
    base: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

/// The superuser the cluster is initialised with (trust authentication, local only).
pub const CLUSTER_USER: &str = "postgres";

impl PrivateCluster {
    /// Starts (or reuses) the cluster under `base`, initialising it if the folder is new.
    ///
    /// # Errors
    /// Missing PostgreSQL binaries, a folder the server user cannot use, or a failed start
    /// (the message includes the end of the server log).
    pub fn start(base: &Path, port: Option<u16>) -> Result<PrivateCluster, StoreError> {
        Self::start_with(
            base,
            &ClusterOptions {
                port,
                ..ClusterOptions::default()
            },
        )
    }

    /// Like [`PrivateCluster::start`], with extra server settings.
    ///
    /// # Errors
    /// As for [`PrivateCluster::start`].
    pub fn start_with(base: &Path, options: &ClusterOptions) -> Result<PrivateCluster, StoreError> {
        let bin_dir = find_bin_dir()?;
        let as_postgres_user = running_as_root();
        fs::create_dir_all(base).map_err(|e| {
            StoreError::cluster(format!("cannot create {}", base.display()), Some(e))
        })?;
        let base = base.canonicalize().map_err(|e| {
            StoreError::cluster(format!("cannot resolve {}", base.display()), Some(e))
        })?;
        let data = base.join("data");
        let socket_dir = socket_dir_for(&base);
        let mut cluster = PrivateCluster {
            base,
            data,
            socket_dir,
            bin_dir,
            port: 0,
            as_postgres_user,
        };
        cluster.prepare_dirs()?;
        cluster.check_version(options.reinit_on_version_change)?;
        if !cluster.data.join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        if let Some(port) = cluster.running_port() {
            cluster.port = port;
            return Ok(cluster);
        }
        let saved = fs::read_to_string(cluster.base.join("port"))
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok());
        let first = options.port.or(saved.filter(|p| port_is_free(*p)));
        let port = match first {
            Some(p) => p,
            None => free_port()?,
        };
        match cluster.pg_ctl_start(port, options) {
            Ok(()) => {}
            // Someone took the port between our check and the start: try once more.
            Err(_) if options.port.is_none() => cluster.pg_ctl_start(free_port()?, options)?,
            Err(e) => return Err(e),
        }
        Ok(cluster)
    }

    /// Where `hubsync demo` keeps its cluster unless told otherwise:
    /// `$XDG_STATE_HOME/hubsync/postgres` (or `~/.local/state/hubsync/postgres`) for an
    /// ordinary user; `/var/lib/hubsync/postgres` for root, whose home the `postgres` user
    /// cannot enter.
    pub fn default_base_dir() -> PathBuf {
        if running_as_root() {
            return PathBuf::from("/var/lib/hubsync/postgres");
        }
        let state = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir);
        state.join("hubsync").join("postgres")
    }

    /// A libpq `key=value` string for the `postgres` database over the unix socket.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// A libpq `key=value` string for `dbname` over the unix socket.
    pub fn url_for(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user={CLUSTER_USER} dbname={dbname}",
            self.socket_dir.display(),
            self.port
        )
    }

    /// A `postgresql://` URL for `dbname` over TCP on 127.0.0.1 (for tools that want TCP).
    pub fn tcp_url_for(&self, dbname: &str) -> String {
        format!(
            "postgresql://{CLUSTER_USER}@127.0.0.1:{}/{dbname}?sslmode=disable",
            self.port
        )
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder holding the unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// PGDATA.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        self.data.join("server.log")
    }

    /// Stops the server (fast shutdown), keeping its data.
    ///
    /// # Errors
    /// `pg_ctl stop` failed.
    pub fn stop(&self) -> Result<(), StoreError> {
        let out = self.run_pg(
            "pg_ctl",
            [
                arg("-D"),
                self.data.as_os_str().into(),
                arg("-m"),
                arg("fast"),
                arg("-w"),
                arg("stop"),
            ],
        )?;
        if out.status.success() {
            Ok(())
        } else {
            Err(StoreError::cluster(
                format!("pg_ctl stop failed: {}", stderr_of(&out)),
                None,
            ))
        }
    }

    fn prepare_dirs(&self) -> Result<(), StoreError> {
        for dir in [&self.data, &self.socket_dir] {
            fs::create_dir_all(dir).map_err(|e| {
                StoreError::cluster(format!("cannot create {}", dir.display()), Some(e))
            })?;
        }
        set_mode(&self.base, 0o755)?;
        set_mode(&self.data, 0o700)?;
        set_mode(&self.socket_dir, 0o755)?;
        if self.as_postgres_user {
            let out = Command::new("id").args(["-u", CLUSTER_USER]).output();
            if !out.is_ok_and(|o| o.status.success()) {
                return Err(StoreError::cluster(
                    "running as root, and PostgreSQL refuses to run as root, but there is no \
                     `postgres` user to run it as (install the postgresql package, or run \
                     hubsync as an ordinary user)",
                    None,
                ));
            }
            for dir in [&self.data, &self.socket_dir] {
                let owner = format!("{CLUSTER_USER}:{CLUSTER_USER}");
                let out = Command::new("chown")
                    .arg("-R")
                    .arg(&owner)
                    .arg(dir)
                    .output()
                    .map_err(|e| StoreError::cluster("cannot run chown", Some(e)))?;
                if !out.status.success() {
                    return Err(StoreError::cluster(
                        format!("chown {} failed: {}", dir.display(), stderr_of(&out)),
                        None,
                    ));
                }
            }
            let reachable = self
                .command("test")
                .arg("-w")
                .arg(&self.data)
                .output()
                .is_ok_and(|o| o.status.success());
            if !reachable {
                return Err(StoreError::cluster(
                    format!(
                        "the postgres user cannot reach {} (a parent folder is private, such \
                         as /root); choose a data folder it can enter, e.g. under /var/lib or \
                         /tmp",
                        self.data.display()
                    ),
                    None,
                ));
            }
        }
        Ok(())
    }

    /// Compares the data folder's major version with the binaries'; on a mismatch either
    /// wipes the folder (throwaway clusters) or explains what to do.
    fn check_version(&self, reinit: bool) -> Result<(), StoreError> {
        let Ok(data_version) = fs::read_to_string(self.data.join("PG_VERSION")) else {
            return Ok(());
        };
        let data_version = data_version.trim().to_owned();
        let out = Command::new(self.bin_dir.join("pg_ctl"))
            .arg("--version")
            .output();
        let binary_version = out
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .and_then(|v| v.split_whitespace().last().map(str::to_owned))
            .and_then(|v| v.split('.').next().map(str::to_owned))
            .unwrap_or_default();
        // A server still running on the folder is left alone; pg_ctl will report it.
        let running = self.data.join("postmaster.pid").exists();
        if binary_version.is_empty() || binary_version == data_version || running {
            return Ok(());
        }
        if !reinit {
            return Err(StoreError::cluster(
                format!(
                    "{} was created by PostgreSQL {data_version}, but the server found is \
                     PostgreSQL {binary_version} ({}); upgrade it with pg_upgrade, point \
                     HUBSYNC_PG_BINDIR at PostgreSQL {data_version}, or remove the folder",
                    self.data.display(),
                    self.bin_dir.display()
                ),
                None,
            ));
        }
        tracing::info!(
            from = %data_version,
            to = %binary_version,
            "re-creating a throwaway PostgreSQL cluster for a new major version"
        );
        fs::remove_dir_all(&self.data).map_err(|e| {
            StoreError::cluster(format!("cannot remove {}", self.data.display()), Some(e))
        })?;
        self.prepare_dirs()
    }

    fn initdb(&self) -> Result<(), StoreError> {
        let out = self.run_pg(
            "initdb",
            [
                arg("-D"),
                self.data.as_os_str().into(),
                arg("-U"),
                arg(CLUSTER_USER),
                arg("--auth=trust"),
                arg("-E"),
                arg("UTF8"),
                arg("--locale=C"),
                arg("--no-instructions"),
            ],
        )?;
        if out.status.success() {
            Ok(())
        } else {
            Err(StoreError::cluster(
                format!("initdb {} failed: {}", self.data.display(), stderr_of(&out)),
                None,
            ))
        }
    }

    /// The port of a server already running on this data folder, if any.
    fn running_port(&self) -> Option<u16> {
        let out = self
            .run_pg(
                "pg_ctl",
                [arg("-D"), self.data.as_os_str().into(), arg("status")],
            )
            .ok()?;
        if !out.status.success() {
            return None;
        }
        // postmaster.pid: pid, data dir, start time, port, socket dir, listen address, …
        let pid_file = fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    fn pg_ctl_start(&mut self, port: u16, options: &ClusterOptions) -> Result<(), StoreError> {
        let mut server = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            self.socket_dir.display()
        );
        for (name, value) in &options.settings {
            server.push_str(&format!(" -c {name}={value}"));
        }
        let log = self.log_file();
        let out = self.run_pg(
            "pg_ctl",
            [
                arg("-D"),
                self.data.as_os_str().into(),
                arg("-l"),
                log.as_os_str().into(),
                arg("-w"),
                arg("-t"),
                arg("60"),
                arg("-o"),
                server.into(),
                arg("start"),
            ],
        )?;
        if !out.status.success() {
            return Err(StoreError::cluster(
                format!(
                    "pg_ctl start on port {port} failed: {}; end of {}:\n{}",
                    stderr_of(&out),
                    log.display(),
                    log_tail(&log)
                ),
                None,
            ));
        }
        self.port = port;
        if let Ok(mut f) = fs::File::create(self.base.join("port")) {
            let _ = writeln!(f, "{port}");
        }
        Ok(())
    }

    /// A command for a PostgreSQL program, run as the server user when we are root.
    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", CLUSTER_USER, "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn run_pg<const N: usize>(
        &self,
        program: &str,
        args: [std::ffi::OsString; N],
    ) -> Result<Output, StoreError> {
        let path = self.bin_dir.join(program);
        self.command(&path)
            .args(args)
            .current_dir(&self.base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| StoreError::cluster(format!("cannot run {}", path.display()), Some(e)))
    }
}

fn arg(s: &str) -> std::ffi::OsString {
    s.into()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn set_mode(path: &Path, mode: u32) -> Result<(), StoreError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| StoreError::cluster(format!("cannot chmod {}", path.display()), Some(e)))
}

/// Whether this process runs as root (uid 0), read from `/proc/self` without `unsafe`.
fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The socket folder: `base/run`, or a short folder under `/tmp` when that path would be
/// too long for a unix socket (108 bytes including `/.s.PGSQL.NNNNN`).
fn socket_dir_for(base: &Path) -> PathBuf {
    let preferred = base.join("run");
    if preferred.as_os_str().len() + 16 < 100 {
        return preferred;
    }
    let digest = Sha256::digest(base.as_os_str().as_encoded_bytes());
    PathBuf::from(format!("/tmp/hubsync-pg-{}", hex::encode(&digest[..6])))
}

/// Finds the folder holding `initdb` and `pg_ctl`: `$HUBSYNC_PG_BINDIR`, the newest
/// `/usr/lib/postgresql/N/bin`, `pg_config --bindir`, then `$PATH`.
///
/// # Errors
/// No PostgreSQL server binaries were found.
pub fn find_bin_dir() -> Result<PathBuf, StoreError> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("HUBSYNC_PG_BINDIR").map(PathBuf::from) {
        if has_server(&dir) {
            return Ok(dir);
        }
        return Err(StoreError::cluster(
            format!("HUBSYNC_PG_BINDIR={} holds no initdb/pg_ctl", dir.display()),
            None,
        ));
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    if let Some(dir) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_server(dir))
    {
        return Ok(dir);
    }
    Err(StoreError::cluster(
        "no PostgreSQL server binaries (initdb, pg_ctl) found in /usr/lib/postgresql/*/bin, \
         pg_config --bindir or PATH; install PostgreSQL (e.g. `apt-get install postgresql`), \
         set HUBSYNC_PG_BINDIR, or set DATABASE_URL to use an existing server",
        None,
    ))
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> Result<u16, StoreError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| StoreError::cluster("cannot find a free TCP port", Some(e)))?;
    let port = listener
        .local_addr()
        .map_err(|e| StoreError::cluster("cannot find a free TCP port", Some(e)))?
        .port();
    Ok(port)
}
