//! `gust doctor`: what this host offers execution environments, and what each missing
//! protection means for a user. The same facts the server prints at start, as a table.

use std::path::Path;

use anyhow::Result;

struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
    meaning: &'static str,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn checks() -> Vec<Check> {
    let uid = nix::unistd::geteuid();
    let mut checks = vec![Check {
        name: "privileges",
        ok: uid.is_root(),
        detail: if uid.is_root() { "root".into() } else { format!("uid {uid} (not root)") },
        meaning: "without root, Gust has no cgroups (unless a hierarchy is delegated), isolates only through a user namespace, and cannot give environments a network of their own",
    }];
    let userns = read("/proc/sys/user/max_user_namespaces")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    checks.push(Check {
        name: "user namespaces",
        ok: userns > 0,
        detail: format!("max_user_namespaces = {userns}"),
        meaning: "without them and without root, environments are not isolated at all",
    });
    let root = Path::new("/sys/fs/cgroup");
    let (version, controllers) = if root.join("cgroup.controllers").exists() {
        (
            "v2",
            read("/sys/fs/cgroup/cgroup.controllers")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        )
    } else {
        let present: Vec<&str> = ["memory", "cpu", "pids", "freezer"]
            .into_iter()
            .filter(|c| root.join(c).join("tasks").exists())
            .collect();
        ("v1", present.join(" "))
    };
    // Probing creates and removes an empty cgroup: the real test of writability.
    let probe =
        gust_sandbox::cgroup::Cgroups::open(root, &format!("doctor-{}", std::process::id()));
    let writable = match &probe {
        Ok(cgroups) => {
            cgroups.close();
            Ok(())
        }
        Err(reason) => Err(reason.clone()),
    };
    checks.push(Check {
        name: "cgroups",
        ok: writable.is_ok(),
        detail: match &writable {
            Ok(()) => format!("{version}, writable; controllers: {controllers}"),
            Err(reason) => format!("{version}: {reason}"),
        },
        meaning: "memory limit (OOM as Runtime.OutOfMemory), CPU share, process limit; without them memory is kept by a watchdog and CPU/process limits are off",
    });
    let freezer = match version {
        "v2" => writable.is_ok(),
        _ => writable.is_ok() && root.join("freezer/tasks").exists(),
    };
    checks.push(Check {
        name: "freezer",
        ok: freezer,
        detail: if freezer { "available".into() } else { "unavailable".into() },
        meaning: "idle environments are frozen (no CPU, background threads stop); without it they keep running between invokes",
    });
    let seccomp =
        read("/proc/self/status").is_some_and(|s| s.lines().any(|l| l.starts_with("Seccomp:")));
    checks.push(Check {
        name: "seccomp",
        ok: seccomp,
        detail: if seccomp {
            "supported: applied to every runtime with no_new_privs".into()
        } else {
            "unsupported".into()
        },
        meaning: "functions may make system calls they have no business making (mount, ptrace, bpf, ...) as far as their user is allowed",
    });
    // Like seccomp above, the real test: a throwaway environment is set up and torn down.
    let isolation = probe_isolation();
    checks.push(Check {
        name: "namespaces",
        ok: isolation.is_ok(),
        detail: match &isolation {
            Ok(()) if nix::unistd::geteuid().is_root() => format!("pid, mount, IPC, UTS; functions run as uid {} without capabilities", gust_sandbox::isolate::SANDBOX_UID),
            Ok(()) => format!("rootless: user, pid, mount, IPC, UTS; functions run as uid {} (the server's user outside) without capabilities", gust_sandbox::isolate::SANDBOX_UID),
            Err(reason) => reason.clone(),
        },
        meaning: "functions run as the server's user, see its files and processes: deploy only code you trust",
    });
    checks.push(Check {
        name: "tmpfs",
        ok: isolation.is_ok(),
        detail: if isolation.is_ok() {
            "/tmp is a private tmpfs of EphemeralStorage; /var/task, /var/runtime, /opt read-only"
                .into()
        } else {
            "not mounted (no mount namespace)".into()
        },
        meaning: "/tmp is the host's /tmp, shared with everything else, with no size limit",
    });
    let private = isolation.is_ok()
        && nix::unistd::geteuid().is_root()
        && gust_sandbox::isolate::private_network(0, &[]).is_ok();
    checks.push(Check {
        name: "network",
        ok: private,
        detail: if private {
            "host network by default (outbound allowed, as Lambda outside a VPC); --sandbox-network none available".into()
        } else {
            "host network only (--sandbox-network none needs root and network namespaces)".into()
        },
        meaning: "functions share the host's network, including every service on its loopback (each Runtime API still admits only its own environment)",
    });
    checks
}

fn probe_isolation() -> Result<(), String> {
    let staging = std::env::temp_dir().join(format!("gust-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&staging).map_err(|e| format!("no temporary directory: {e}"))?;
    let result = std::env::current_exe()
        .map_err(|e| e.to_string())
        .and_then(|server| {
            gust_sandbox::isolate::Isolation::for_host(
                gust_sandbox::isolate::init_program(server),
                staging.clone(),
                gust_sandbox::isolate::NetworkMode::Host,
            )
            .probe()
        });
    let _ = std::fs::remove_dir(&staging);
    result
}

/// Prints the table; exits 0 (it reports, it does not judge).
pub fn run() -> Result<()> {
    let checks = checks();
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(8);
    println!("{:<width$}  {:<3}  DETAIL", "CHECK", "OK");
    for check in &checks {
        println!(
            "{:<width$}  {:<3}  {}",
            check.name,
            if check.ok { "yes" } else { "no" },
            check.detail
        );
        if !check.ok {
            println!("{:<width$}       means: {}", "", check.meaning);
        }
    }
    Ok(())
}
