//! Which parts of a tree sit on filesystems that are not local disks: network filesystems (NFS,
//! SMB), the VM and container shares of WSL, Docker Desktop and friends (9p, virtiofs, FUSE).
//! Writes made on the other side raise no event here, so the watcher polls them; and a `stat`
//! there can take a round trip, so the server never makes one on an async thread.
//!
//! Linux says what is mounted where in `/proc/self/mountinfo`; elsewhere nothing is known and
//! native watching is used.

use std::path::{Path, PathBuf};

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: PathBuf,
    /// As the kernel names it: `ext4`, `nfs4`, `9p`, `fuse.sshfs`...
    pub fstype: String,
}

/// A subtree to poll, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polled {
    pub subtree: PathBuf,
    pub fstype: String,
    pub kind: &'static str,
}

/// What is mounted on this machine (empty where that cannot be read).
pub fn mounts() -> Vec<Mount> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| parse_mountinfo(&text))
        .unwrap_or_default()
}

/// The subtrees of `root` (canonical) that must be polled: all of it when it sits on such a
/// filesystem, and every such filesystem mounted below it.
pub fn polled_subtrees(root: &Path, mounts: &[Mount]) -> Vec<Polled> {
    let containing = mounts
        .iter()
        .filter(|mount| root.starts_with(&mount.point))
        .max_by_key(|mount| mount.point.as_os_str().len());
    let below = mounts
        .iter()
        .filter(|mount| mount.point.starts_with(root) && mount.point != root);
    containing
        .map(|mount| (root.to_path_buf(), mount))
        .into_iter()
        .chain(below.map(|mount| (mount.point.clone(), mount)))
        .filter_map(|(subtree, mount)| {
            let kind = kind_needing_polls(&mount.fstype)?;
            Some(Polled {
                subtree,
                fstype: mount.fstype.clone(),
                kind,
            })
        })
        .fold(Vec::new(), |mut polled: Vec<Polled>, candidate| {
            // A subtree inside one already polled adds nothing.
            if !polled
                .iter()
                .any(|outer| candidate.subtree.starts_with(&outer.subtree))
            {
                polled.push(candidate);
            }
            polled
        })
}

/// For a filesystem type whose changes may not raise events here, what kind of filesystem it is.
fn kind_needing_polls(fstype: &str) -> Option<&'static str> {
    let base = fstype.split('.').next().unwrap_or(fstype);
    match base {
        "nfs" | "nfs4" | "cifs" | "smb3" | "smbfs" | "afs" | "ceph" | "glusterfs" | "lustre"
        | "gpfs" | "ncpfs" | "davfs" => Some("a network filesystem"),
        "9p" | "v9fs" | "virtiofs" | "vboxsf" | "prl_fs" | "vmhgfs" | "drvfs" => {
            Some("a filesystem shared by a VM or container host")
        }
        "fuse" | "fuseblk" => Some("a FUSE filesystem"),
        _ => None,
    }
}

/// Reads `/proc/self/mountinfo`: the mount point is the fifth field, the filesystem type the
/// first after the ` - ` separator. Octal escapes (`\040` for a space) are undone.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (fields, rest) = line.split_once(" - ")?;
            let point = fields.split(' ').nth(4)?;
            let fstype = rest.split(' ').next()?;
            Some(Mount {
                point: PathBuf::from(unescape(point)),
                fstype: fstype.to_owned(),
            })
        })
        .collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let octal = bytes.get(at + 1..at + 4).filter(|digits| {
            bytes[at] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d))
        });
        match octal {
            Some(digits) => {
                let value = digits.iter().fold(0u32, |n, d| n * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                at += 4;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
40 22 0:35 / /mnt/c rw,noatime - 9p drvfs rw,dirsync,aname=drvfs
41 22 0:36 / /home/me/remote rw - fuse.sshfs me@host:/srv rw,user_id=1000
42 22 0:37 / /home/me/project/shared\\040drive rw - nfs4 server:/export rw
43 22 0:38 / /home/me/project/tmp rw - tmpfs tmpfs rw
";

    #[test]
    fn mountinfo_is_read_with_its_escapes() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[2].fstype, "fuse.sshfs");
        assert_eq!(
            mounts[3].point,
            PathBuf::from("/home/me/project/shared drive")
        );
    }

    #[test]
    fn network_vm_and_fuse_filesystems_are_polled() {
        let mounts = parse_mountinfo(MOUNTINFO);
        let subtrees = |root: &str| -> Vec<(String, String)> {
            polled_subtrees(Path::new(root), &mounts)
                .into_iter()
                .map(|polled| (polled.subtree.display().to_string(), polled.fstype))
                .collect()
        };
        assert_eq!(
            subtrees("/mnt/c/Users/me/site"),
            [("/mnt/c/Users/me/site".into(), "9p".into())]
        );
        assert_eq!(
            subtrees("/home/me/remote/site"),
            [("/home/me/remote/site".into(), "fuse.sshfs".into())]
        );
        assert_eq!(
            subtrees("/home/me/project"),
            [("/home/me/project/shared drive".into(), "nfs4".into())],
            "a network drive mounted inside the project; tmpfs is local"
        );
        assert!(subtrees("/home/me/other").is_empty());
        assert!(polled_subtrees(Path::new("/mnt/c"), &[]).is_empty());
    }
}
