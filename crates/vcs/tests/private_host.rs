//! The fetcher against a real private git host (`git http-backend` with basic auth and
//! `go-import` meta tags) in the test's own network namespace, with the real go command:
//! lists, queries, `.info`/`.mod`, zips, and every failure with a reason and no secret.

use std::collections::BTreeMap;
use std::time::Duration;

use goproxy_testkit::git_host::{fixture_repos, GitHost};
use goproxy_testkit::netns::{is_root, Netns};
use goproxy_vcs::{CredentialSpec, Fetcher, VcsConfig, VcsError};

const HOST: &str = "git.corp.test";
const PASSWORD: &str = "s3cret-pw";

struct Lab {
    ns: Netns,
    host: GitHost,
    dir: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.host.stop();
        self.ns.delete();
    }
}

fn lab(tag: &str) -> Lab {
    let ns = Netns::create(&format!("gpvcs-{tag}-{}", std::process::id())).expect("netns");
    ns.set_hosts(&format!("127.0.0.1 localhost {HOST}\n"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repos = dir.path().join("repos");
    fixture_repos(&repos, HOST).unwrap();
    let listener = ns.bind_tcp("127.0.0.1:80").unwrap();
    let host = GitHost::start(listener, HOST, &repos, "alice", PASSWORD).unwrap();
    Lab { ns, host, dir }
}

/// A script that runs the go command inside the lab's namespace (where the host name
/// resolves).
fn go_wrapper(lab: &Lab, name: &str) -> std::path::PathBuf {
    let wrapper = lab.dir.path().join(name);
    let go = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v go"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec ip netns exec {} {} \"$@\"\n",
            lab.ns.name(),
            go.trim()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

/// A fetcher whose `go` runs inside the lab's namespace.
fn fetcher(lab: &Lab, password: &str, config: VcsConfig) -> Fetcher {
    let wrapper = go_wrapper(lab, &format!("go-{password}"));
    let netrc = lab.dir.path().join(format!("netrc-{password}"));
    std::fs::write(
        &netrc,
        format!("machine {HOST} login alice password {password}\n"),
    )
    .unwrap();
    let sets: BTreeMap<String, CredentialSpec> = [(
        "corp".to_string(),
        CredentialSpec {
            netrc_file: Some(netrc),
            ..CredentialSpec::default()
        },
    )]
    .into();
    let config = VcsConfig {
        go: wrapper,
        insecure_hosts: vec![HOST.into()],
        ..config
    };
    Fetcher::new(
        config,
        &sets,
        &lab.dir.path().join(format!("vcs-{password}")),
    )
    .unwrap()
}

fn zip_names(file: std::fs::File) -> Vec<String> {
    let mut zip = zip::ZipArchive::new(file).unwrap();
    (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().to_string())
        .collect()
}

fn no_leaks(message: &str, lab: &Lab) {
    assert!(!message.contains(PASSWORD), "secret in {message:?}");
    assert!(
        !message.contains(&*lab.dir.path().to_string_lossy()),
        "local path in {message:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_queries_and_artifacts_come_from_the_private_host() {
    if !is_root() {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    let lab = lab("ok");
    let f = fetcher(&lab, PASSWORD, VcsConfig::default());
    f.probe().await.unwrap();
    let corp = Some("corp");
    let lib = format!("{HOST}/team/lib");

    assert_eq!(f.list(&lib, corp).await.unwrap(), ["v1.0.0", "v1.1.0"]);
    assert_eq!(
        f.query(&lib, "latest", corp).await.unwrap().version,
        "v1.1.0"
    );
    let main = f.query(&lib, "main", corp).await.unwrap();
    assert!(
        main.version.starts_with("v1.1.1-0.20260401000000-"),
        "{main:?}"
    );
    assert_eq!(main.time.as_deref(), Some("2026-04-01T00:00:00Z"));

    let facts = f.facts(&lib, "v1.0.0", corp).await.unwrap();
    assert_eq!(facts.0.time.as_deref(), Some("2026-01-01T00:00:00Z"));
    assert_eq!(
        &facts.1[..],
        format!("module {lib}\n\ngo 1.18\n").as_bytes()
    );
    let v2 = f.facts(&format!("{lib}/v2"), "v2.0.0", corp).await.unwrap();
    assert_eq!(
        &v2.1[..],
        format!("module {lib}/v2\n\ngo 1.18\n").as_bytes()
    );

    let zip = f.zip(&lib, "v1.1.0", corp).await.unwrap().into_std().await;
    let names = zip_names(zip);
    assert!(names.contains(&format!("{lib}@v1.1.0/lib.go")), "{names:?}");
    // Nothing but clones stays in the workspace: no extracted tree, no zip.
    let download = lab.dir.path().join(format!(
        "vcs-{PASSWORD}/corp/modcache/cache/download/{lib}/@v"
    ));
    assert!(!download.join("v1.1.0.zip").exists());
    assert!(!lab
        .dir
        .path()
        .join(format!("vcs-{PASSWORD}/corp/modcache/{lib}@v1.1.0"))
        .exists());
    let mut leftover = String::new();
    for entry in std::fs::read_dir(lab.dir.path().join(format!("vcs-{PASSWORD}/corp/tmp"))).unwrap()
    {
        leftover.push_str(&entry.unwrap().path().display().to_string());
    }
    assert!(leftover.is_empty(), "temporary trees left: {leftover}");

    // Without credentials the host refuses; the reason says so and shows no secret.
    match f.list(&lib, None).await {
        Err(VcsError::Auth(m)) => no_leaks(&m, &lab),
        other => panic!("{other:?}"),
    }
    match f.facts(&format!("{HOST}/team/nope"), "v1.0.0", corp).await {
        Err(VcsError::NotFound(m)) => {
            assert!(m.contains("not found"), "{m}");
            no_leaks(&m, &lab);
        }
        other => panic!("{other:?}"),
    }
    match f.query(&lib, "v9.9.9", corp).await {
        Err(e) => assert!(e.is_not_found(), "{e:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_hostile_repos_timeouts_and_a_dead_host_are_refused_with_reasons() {
    if !is_root() {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    let mut lab = lab("bad");
    let corp = Some("corp");
    let wrong = fetcher(&lab, "wrong-password", VcsConfig::default());
    wrong.probe().await.unwrap();
    match wrong.list(&format!("{HOST}/team/lib"), corp).await {
        Err(VcsError::Auth(m)) => assert!(!m.contains("wrong-password"), "{m}"),
        other => panic!("{other:?}"),
    }

    let f = fetcher(
        &lab,
        PASSWORD,
        VcsConfig {
            max_zip_bytes: 1 << 20,
            ..VcsConfig::default()
        },
    );
    f.probe().await.unwrap();
    match f.zip(&format!("{HOST}/team/escape"), "v1.0.0", corp).await {
        Err(VcsError::Refused(m)) => {
            assert!(m.contains("\"passwd\"") && m.contains("/etc/passwd"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    match f.zip(&format!("{HOST}/team/case"), "v1.0.0", corp).await {
        Err(VcsError::Refused(m)) => assert!(m.contains("case-insensitive"), "{m}"),
        other => panic!("{other:?}"),
    }
    match f.zip(&format!("{HOST}/team/big"), "v1.0.0", corp).await {
        Err(VcsError::Refused(m)) => assert!(m.contains("max_zip_bytes"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A go.mod declaring another module is fetched as it is; the front end's validation
    // refuses it (tested with the node).
    let liar = f.facts(&format!("{HOST}/team/liar"), "v1.0.0", corp).await;
    match liar {
        Ok(facts) => assert!(std::str::from_utf8(&facts.1)
            .unwrap()
            .contains("example.com/someone-else")),
        Err(e) => assert!(
            matches!(e, VcsError::Refused(_) | VcsError::NotFound(_)),
            "{e:?}"
        ),
    }

    let hasty = fetcher(
        &lab,
        "hasty",
        VcsConfig {
            timeout: Duration::from_millis(1),
            ..VcsConfig::default()
        },
    );
    hasty.probe().await.unwrap();
    assert!(matches!(
        hasty.list(&format!("{HOST}/team/lib"), corp).await,
        Err(VcsError::Timeout(_))
    ));

    lab.host.stop();
    let fresh = fetcher(&lab, "fresh", VcsConfig::default());
    fresh.probe().await.unwrap();
    match fresh.list(&format!("{HOST}/team/lib"), corp).await {
        Err(VcsError::Failed(m)) => {
            assert!(m.contains("connection refused"), "{m}");
            no_leaks(&m, &lab);
        }
        other => panic!("{other:?}"),
    }
}

/// A fetcher whose set `corp` authenticates with an SSH key only: the `go-import` tag names
/// the HTTP URL, and `insteadof` sends git to the SSH host.
fn ssh_fetcher(
    lab: &Lab,
    key: &std::path::Path,
    known_hosts: &std::path::Path,
    tag: &str,
) -> Fetcher {
    let wrapper = go_wrapper(lab, &format!("go-ssh-{tag}"));
    let repos = lab.dir.path().join("repos");
    let sets: BTreeMap<String, CredentialSpec> = [(
        "corp".to_string(),
        CredentialSpec {
            ssh_key_file: Some(key.to_path_buf()),
            known_hosts_file: Some(known_hosts.to_path_buf()),
            insteadof: [(
                format!("http://{HOST}:80/"),
                format!("ssh://root@{HOST}{}/", repos.display()),
            )]
            .into(),
            ..CredentialSpec::default()
        },
    )]
    .into();
    let config = VcsConfig {
        go: wrapper,
        insecure_hosts: vec![HOST.into()],
        ..VcsConfig::default()
    };
    Fetcher::new(
        config,
        &sets,
        &lab.dir.path().join(format!("vcs-ssh-{tag}")),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_key_with_a_checked_host_key_fetches_and_an_unknown_host_key_is_refused() {
    if !is_root() {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    let lab = lab("ssh");
    let ssh = goproxy_testkit::ssh_host::SshHost::start(&lab.ns, HOST, &lab.dir.path().join("ssh"))
        .unwrap();
    let corp = Some("corp");
    let lib = format!("{HOST}/team/lib");

    let f = ssh_fetcher(&lab, &ssh.client_key, &ssh.known_hosts, "good");
    f.probe().await.unwrap();
    assert_eq!(f.list(&lib, corp).await.unwrap(), ["v1.0.0", "v1.1.0"]);
    let zip = f.zip(&lib, "v1.1.0", corp).await.unwrap().into_std().await;
    assert!(zip_names(zip).contains(&format!("{lib}@v1.1.0/lib.go")));
    // Git went over SSH: the HTTP host only answered the go-import discovery.
    assert_eq!(lab.host.fetches(), 0, "{:?}", lab.host.requests());
    let log = std::fs::read_to_string(lab.dir.path().join("ssh/sshd.log")).unwrap();
    assert!(log.contains("Accepted publickey for root"), "{log}");

    // The same host presenting a key known_hosts does not list: refused, nothing fetched.
    let wrong = ssh_fetcher(&lab, &ssh.client_key, &ssh.wrong_known_hosts, "wrong");
    wrong.probe().await.unwrap();
    match wrong.list(&lib, corp).await {
        Err(VcsError::Auth(m)) => {
            assert!(m.contains("host key verification failed"), "{m}");
            no_leaks(&m, &lab);
        }
        other => panic!("{other:?}"),
    }
}
