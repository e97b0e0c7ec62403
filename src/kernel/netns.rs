//! Which network namespace a live capture runs in: the host's, or one of its own (a
//! container, `ip netns exec`).
//!
//! It matters to the kernel's side of the report. The `tcp` trace events come from every
//! namespace on the host, while the addresses a RST is judged local by, and the counters of
//! `/proc/net/netstat`, are this namespace's. In a namespace of its own, a RST with no event
//! was not sent from this namespace, but another one on the same host (the host's own, a
//! bridge or NAT in front of a container) may have sent it.
//!
//! How it is told, from `/proc`, first answer wins:
//! - recent kernels (6.18 does) give the initial network namespace a fixed inode,
//!   `0xEFFFFFF9` ([`INIT_NET_INODE`]), as `readlink /proc/self/ns/net` shows it
//!   (`net:[4026531833]`): equal, it is the host's;
//! - the sysctls that are not per namespace are shown only in the initial one:
//!   `/proc/sys/net/core/netdev_max_backlog` is there in the host's namespace and missing
//!   in any other (where `/proc/sys/net/core` holds a dozen entries instead of forty);
//! - a namespace other than PID 1's is one of its own (when PID 1's can be read; the
//!   same as PID 1's says nothing, as PID 1 may be a container's init);
//! - otherwise it cannot be told, and the report says nothing of it.

use serde::Serialize;
use std::path::Path;

/// The inode of the initial network namespace on kernels that fix it (6.18 does: its
/// `readlink /proc/self/ns/net` is `net:[4026531833]`, and a namespace made by `ip netns
/// add` another).
pub const INIT_NET_INODE: u64 = 0xEFFF_FFF9;

/// The network namespace a live capture ran in.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetNs {
    /// Its inode (`net:[N]`).
    pub inode: u64,
    /// `true`: the host's (the initial namespace); `false`: one of its own; `null`: it
    /// cannot be told.
    pub host: Option<bool>,
}

/// The inode a `/proc/<pid>/ns/net` link names (`net:[4026531833]`).
fn inode(link: &Path) -> Option<u64> {
    let target = std::fs::read_link(link).ok()?;
    let text = target.to_str()?;
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// The namespace of this process, from `proc` (normally `/proc`); `None` when its link
/// cannot be read.
pub fn detect(proc: &Path) -> Option<NetNs> {
    let own = inode(&proc.join("self/ns/net"))?;
    let core = proc.join("sys/net/core");
    let host = if own == INIT_NET_INODE {
        Some(true)
    } else if core.is_dir() {
        Some(core.join("netdev_max_backlog").exists())
    } else {
        // PID 1 elsewhere: not the host's. The same: PID 1 may be a container's init.
        inode(&proc.join("1/ns/net")).and_then(|init| (init != own).then_some(false))
    };
    Some(NetNs { inode: own, host })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake `/proc` whose `self` and `1` name the given namespaces, and whose
    /// `sys/net/core` holds `core` (nothing when `None`).
    fn proc(own: u64, init: Option<u64>, core: Option<&[&str]>) -> std::path::PathBuf {
        let dir = scratch();
        for (pid, ino) in [("self", Some(own)), ("1", init)] {
            let Some(ino) = ino else { continue };
            std::fs::create_dir_all(dir.join(pid).join("ns")).unwrap();
            symlink(format!("net:[{ino}]"), dir.join(pid).join("ns/net")).unwrap();
        }
        if let Some(names) = core {
            std::fs::create_dir_all(dir.join("sys/net/core")).unwrap();
            for n in names {
                std::fs::write(dir.join("sys/net/core").join(n), "1000\n").unwrap();
            }
        }
        dir
    }

    /// An empty directory of its own for each call.
    fn scratch() -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("resetscope-netns-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_initial_namespace_is_the_hosts() {
        let p = proc(INIT_NET_INODE, None, None);
        let ns = detect(&p).unwrap();
        assert_eq!(
            ns,
            NetNs {
                inode: INIT_NET_INODE,
                host: Some(true)
            }
        );
    }

    #[test]
    fn the_global_sysctls_tell_the_hosts_namespace_from_others() {
        let host = proc(4026531992, None, Some(&["somaxconn", "netdev_max_backlog"]));
        assert_eq!(detect(&host).unwrap().host, Some(true));
        let own = proc(4026532178, None, Some(&["somaxconn"]));
        assert_eq!(detect(&own).unwrap().host, Some(false));
    }

    #[test]
    fn without_sysctls_pid_1_decides_when_it_can_be_read() {
        let p = proc(4026532178, Some(4026531992), None);
        assert_eq!(detect(&p).unwrap().host, Some(false));
        // PID 1 in the same one may be a container's init: cannot be told.
        let p = proc(4026531992, Some(4026531992), None);
        assert_eq!(detect(&p).unwrap().host, None);
        let p = proc(4026531992, None, None);
        assert_eq!(detect(&p).unwrap().host, None);
    }

    #[test]
    fn no_link_no_answer() {
        assert_eq!(detect(&scratch()), None);
    }

    #[test]
    fn this_process_has_an_answer() {
        assert!(detect(Path::new("/proc")).is_some());
    }
}
