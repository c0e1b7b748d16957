//! The architectures berth compiles filters for, with their syscall tables.
//!
//! A filter is a list of per-architecture sections chosen by `seccomp_data.arch`; each
//! section maps syscall numbers of its own ABI. x86_64 hosts also get an i386 section when a
//! profile lists `SCMP_ARCH_X86` (Docker's does), so 32-bit binaries work as under Docker.
//! x32 and 32-bit ARM are not supported: their syscalls hit the bad-architecture action.

use oci_spec::runtime::Arch as OciArch;

use super::tables;

/// A syscall ABI with a table in [`tables`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Arch {
    X86_64,
    I386,
    Aarch64,
}

/// `AUDIT_ARCH_X86_64` from `<linux/audit.h>`: EM_X86_64 | 64BIT | LE.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`: EM_386 | LE.
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `AUDIT_ARCH_AARCH64`: EM_AARCH64 | 64BIT | LE.
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

impl Arch {
    /// The architecture berth itself was built for, if it has a table.
    pub(super) fn native() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The sections to emit for `profile_arches` on a `native` host: native first, then the
    /// compat ABIs the profile asks for and berth can express.
    pub(super) fn sections(native: Arch, profile_arches: Option<&[OciArch]>) -> ([Arch; 2], usize) {
        let wants_i386 = profile_arches
            .unwrap_or_default()
            .contains(&OciArch::ScmpArchX86);
        if native == Arch::X86_64 && wants_i386 {
            ([Arch::X86_64, Arch::I386], 2)
        } else {
            ([native, native], 1)
        }
    }

    /// The value of `seccomp_data.arch` for this ABI.
    pub(super) fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::I386 => AUDIT_ARCH_I386,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// Whether syscall arguments are 64 bits wide (else only the low half is meaningful).
    pub(super) fn is_64bit(self) -> bool {
        !matches!(self, Arch::I386)
    }

    fn table(self) -> &'static [(&'static str, u16)] {
        match self {
            Arch::X86_64 => tables::X86_64,
            Arch::I386 => tables::I386,
            Arch::Aarch64 => tables::AARCH64,
        }
    }

    fn index(self) -> &'static Index {
        match self {
            Arch::X86_64 => &X86_64_INDEX,
            Arch::I386 => &I386_INDEX,
            Arch::Aarch64 => &AARCH64_INDEX,
        }
    }

    /// The number of `name` in this ABI, or `None` when the ABI has no such syscall.
    pub(super) fn syscall_nr(self, name: &str) -> Option<u16> {
        let (table, index) = (self.table(), self.index());
        let mut slot = hash(name.as_bytes()) as usize & (INDEX_SIZE - 1);
        loop {
            let entry = *index.get(slot)?;
            if entry == EMPTY {
                return None;
            }
            let (n, nr) = table[usize::from(entry)];
            if n == name {
                return Some(nr);
            }
            slot = (slot + 1) & (INDEX_SIZE - 1);
        }
    }

    /// The highest syscall number in the table.
    pub(super) fn max_nr(self) -> u16 {
        self.table().iter().map(|(_, nr)| *nr).max().unwrap_or(0)
    }
}

// Name lookup runs for every name of every profile entry on every container start, so the
// tables get a hash index built at compile time: one FNV-1a hash and about one string
// comparison per name instead of a binary search's nine.

/// Slots of an open-addressing index (a power of two, over twice the largest table).
const INDEX_SIZE: usize = 1024;
const EMPTY: u16 = u16::MAX;
type Index = [u16; INDEX_SIZE];

static X86_64_INDEX: Index = build_index(tables::X86_64);
static I386_INDEX: Index = build_index(tables::I386);
static AARCH64_INDEX: Index = build_index(tables::AARCH64);

/// 32-bit FNV-1a.
const fn hash(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u32;
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
    }
    h
}

/// Maps hash slots to table positions, with linear probing.
const fn build_index(table: &[(&str, u16)]) -> Index {
    assert!(table.len() * 2 <= INDEX_SIZE);
    let mut index = [EMPTY; INDEX_SIZE];
    let mut i = 0;
    while i < table.len() {
        let mut slot = hash(table[i].0.as_bytes()) as usize & (INDEX_SIZE - 1);
        while index[slot] != EMPTY {
            slot = (slot + 1) & (INDEX_SIZE - 1);
        }
        index[slot] = i as u16;
        i += 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for arch in [Arch::X86_64, Arch::I386, Arch::Aarch64] {
            let t = arch.table();
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{arch:?} not sorted");
            let mut nrs: Vec<u16> = t.iter().map(|e| e.1).collect();
            nrs.sort_unstable();
            nrs.dedup();
            assert_eq!(nrs.len(), t.len(), "{arch:?} has duplicate numbers");
        }
    }

    #[test]
    fn every_table_name_is_found_by_the_index() {
        for arch in [Arch::X86_64, Arch::I386, Arch::Aarch64] {
            for (name, nr) in arch.table() {
                assert_eq!(arch.syscall_nr(name), Some(*nr), "{arch:?} {name}");
            }
            assert_eq!(arch.syscall_nr(""), None);
            assert_eq!(arch.syscall_nr("read2"), None);
        }
    }

    #[test]
    fn known_numbers_match_libc() {
        #[cfg(target_arch = "x86_64")]
        for (name, nr) in [
            ("read", libc::SYS_read),
            ("getpid", libc::SYS_getpid),
            ("clone3", libc::SYS_clone3),
            ("unshare", libc::SYS_unshare),
            ("mount", libc::SYS_mount),
            ("personality", libc::SYS_personality),
            ("socket", libc::SYS_socket),
        ] {
            assert_eq!(Arch::X86_64.syscall_nr(name), Some(nr as u16), "{name}");
        }
        assert_eq!(Arch::I386.syscall_nr("socketcall"), Some(102));
        assert_eq!(Arch::Aarch64.syscall_nr("clone"), Some(220));
        assert_eq!(Arch::Aarch64.syscall_nr("open"), None);
        assert_eq!(Arch::X86_64.syscall_nr("chown32"), None);
        assert_eq!(Arch::X86_64.max_nr(), 470);
    }
}
