//! The real `go` command (Debian's golang-go) as a client, isolated in its own HOME.

use std::path::Path;
use std::process::Command;

/// Runs `go ARGS` in `dir` with GOPROXY=`proxy` and nothing inherited but PATH; returns
/// (success, stdout, stderr).
pub fn go(home: &Path, dir: &Path, proxy: &str, args: &[&str]) -> (bool, String, String) {
    go_with(home, dir, proxy, "off", args)
}

/// [`go`] with GOSUMDB=`gosumdb` (`off`, or `NAME+HASH+KEY [URL]`).
pub fn go_with(
    home: &Path,
    dir: &Path,
    proxy: &str,
    gosumdb: &str,
    args: &[&str],
) -> (bool, String, String) {
    go_env(home, dir, proxy, gosumdb, &[], args)
}

/// [`go_with`] and the variables `env` (`SSL_CERT_FILE`, …).
pub fn go_env(
    home: &Path,
    dir: &Path,
    proxy: &str,
    gosumdb: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> (bool, String, String) {
    let output = Command::new("go")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GOPATH", home.join("gopath"))
        .env("GOMODCACHE", home.join("modcache"))
        .env("GOCACHE", home.join("gocache"))
        .env("GOPROXY", proxy)
        .env("GOSUMDB", gosumdb)
        .env("GOTOOLCHAIN", "local")
        .env("GO111MODULE", "on")
        .env("CGO_ENABLED", "0")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run go ({e}); apt-get install -y golang-go"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// [`go`], which must succeed; returns stdout.
pub fn go_ok(home: &Path, dir: &Path, proxy: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) = go(home, dir, proxy, args);
    assert!(ok, "go {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// A module `example.com/app` in `dir` whose main.go is `main_go`.
pub fn app(dir: &Path, main_go: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("go.mod"), "module example.com/app\n\ngo 1.18\n").unwrap();
    std::fs::write(dir.join("main.go"), main_go).unwrap();
}
