//! Source lines of an object's programs, from its `.BTF.ext` line info, for
//! naming where the verifier refused a program on kernels whose verifier log
//! quotes the source line but not its file and number (`; return *v;`
//! before 6.x, `; return *v; @ prog.bpf.c:45` after).
//!
//! The object is an operator's file, so every offset is checked: a short or
//! malformed section gives no answer, never a panic.

/// The line-info records of one object: (file, line number, source text).
pub struct LineIndex {
    lines: Vec<(String, u32, String)>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The contents of each section of a little-endian ELF64 file, by name.
fn sections(elf: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = usize::try_from(u64_at(elf, 0x28)?).ok()?;
    let shentsize = usize::from(u16_at(elf, 0x3a)?);
    let shnum = usize::from(u16_at(elf, 0x3c)?);
    let shstrndx = usize::from(u16_at(elf, 0x3e)?);
    if shentsize < 64 {
        return None;
    }
    let header = |i: usize| -> Option<(u32, &[u8])> {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let name = u32_at(elf, at)?;
        let offset = usize::try_from(u64_at(elf, at.checked_add(24)?)?).ok()?;
        let size = usize::try_from(u64_at(elf, at.checked_add(32)?)?).ok()?;
        Some((name, elf.get(offset..offset.checked_add(size)?)?))
    };
    let (_, names) = header(shstrndx)?;
    let mut out = Vec::new();
    for i in 0..shnum {
        let Some((name, data)) = header(i) else {
            continue;
        };
        out.push((c_str(names, name as usize)?, data));
    }
    Some(out)
}

/// The NUL-terminated string at `at`.
fn c_str(table: &[u8], at: usize) -> Option<&[u8]> {
    let rest = table.get(at..)?;
    Some(&rest[..rest.iter().position(|&b| b == 0)?])
}

impl LineIndex {
    /// Every line record of `.BTF.ext`, with its strings from `.BTF`; an
    /// empty index when the object has none or they do not parse.
    pub fn of_object(elf: &[u8]) -> LineIndex {
        LineIndex {
            lines: Self::parse(elf).unwrap_or_default(),
        }
    }

    fn parse(elf: &[u8]) -> Option<Vec<(String, u32, String)>> {
        let sections = sections(elf)?;
        let find = |name: &[u8]| sections.iter().find(|(n, _)| *n == name).map(|(_, d)| *d);
        let (btf, ext) = (find(b".BTF")?, find(b".BTF.ext")?);
        if u16_at(btf, 0)? != 0xeb9f || u16_at(ext, 0)? != 0xeb9f {
            return None;
        }
        let hdr = u32_at(btf, 4)? as usize;
        let (str_off, str_len) = (u32_at(btf, 16)? as usize, u32_at(btf, 20)? as usize);
        let strings =
            btf.get(hdr.checked_add(str_off)?..hdr.checked_add(str_off)?.checked_add(str_len)?)?;
        let text = |at: u32| -> Option<String> {
            Some(String::from_utf8_lossy(c_str(strings, at as usize)?).into_owned())
        };
        let ext_hdr = u32_at(ext, 4)? as usize;
        let (line_off, line_len) = (u32_at(ext, 16)? as usize, u32_at(ext, 20)? as usize);
        let start = ext_hdr.checked_add(line_off)?;
        let info = ext.get(start..start.checked_add(line_len)?)?;
        let rec_size = u32_at(info, 0)? as usize;
        if rec_size < 16 {
            return None;
        }
        let mut out = Vec::new();
        let mut at = 4;
        while at + 8 <= info.len() {
            let count = u32_at(info, at + 4)? as usize;
            at += 8;
            for _ in 0..count {
                let record = info.get(at..at.checked_add(rec_size)?)?;
                let file = text(u32_at(record, 4)?)?;
                let line = text(u32_at(record, 8)?)?;
                // line_col: line number above 10 bits of column.
                out.push((file, u32_at(record, 12)? >> 10, line));
                at += rec_size;
            }
        }
        Some(out)
    }

    /// Whether the object came with source lines at all (built with `-g`):
    /// without them, nothing can be said of what its code does.
    pub fn has_source(&self) -> bool {
        !self.lines.is_empty()
    }

    /// Whether any source line of the object's programs, given as its
    /// file's path and its text, satisfies `test`.
    pub fn any(&self, test: impl Fn(&str, &str) -> bool) -> bool {
        self.lines.iter().any(|(file, _, text)| test(file, text))
    }

    /// `file:line` of the source line whose text is `code` (as the
    /// verifier quotes it), when exactly one line of the object has it.
    pub fn place_of(&self, code: &str) -> Option<String> {
        let code = code.trim();
        let mut found = self
            .lines
            .iter()
            .filter(|(_, _, text)| text.trim() == code)
            .map(|(file, line, _)| {
                let base = file.rsplit('/').next().unwrap_or(file);
                format!("{base}:{line}")
            });
        let first = found.next()?;
        found.all(|other| other == first).then_some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_gives_no_answer_and_no_panic() {
        for bytes in [
            &b""[..],
            b"\x7fELF\x02\x01",
            b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            assert!(LineIndex::of_object(bytes).place_of("x").is_none());
        }
        let mut elf = vec![0u8; 256];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(LineIndex::of_object(&elf).place_of("x").is_none());
    }

    #[test]
    fn a_real_object_names_the_file_and_line_of_a_source_line() {
        let (_, bytes) = crate::object::embedded::EMBEDDED
            .iter()
            .find(|(name, _)| *name == "runqlat")
            .expect("runqlat is built in");
        let index = LineIndex::of_object(bytes);
        let place = index.place_of("\tif (!tid)").expect("a unique line");
        let source = include_str!("../../bpf/runqlat.bpf.c");
        let line = source
            .lines()
            .position(|l| l.trim() == "if (!tid)")
            .expect("in the source")
            + 1;
        assert_eq!(place, format!("runqlat.bpf.c:{line}"));
        // A line many places share names none of them.
        assert_eq!(index.place_of("return 0;"), None);
    }
}
