//! Reading hypothesis and reference streams the way the sacreBLEU CLI does.
//!
//! sacreBLEU opens files as UTF-8 with `newline="\n"` (only `\n` ends a
//! line), transparently decompresses `*.gz`, and applies Python's
//! `str.rstrip()` to every line, which removes *all* trailing whitespace
//! (including a `\r` left by CRLF files). Empty lines are kept. The scores
//! do not depend on trailing whitespace, so this only matters for what a
//! caller sees in the returned lines.
//!
//! The streams' line counts are checked here too, and every metric walks
//! the segments (a hypothesis with one line of each reference stream)
//! through [`per_segment`].

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::text::py_rstrip;
use crate::Error;

/// Reads a whole text stream into lines; `-` reads standard input.
///
/// Files whose name ends in `.gz` are decompressed. Every line has its
/// trailing whitespace removed (Python `str.rstrip()`), empty lines are
/// kept, and a final newline does not start an extra line. Nothing is
/// returned from a partial read: an unreadable file or an invalid UTF-8
/// line is an error naming the file (and the 1-based line).
pub fn read_lines(path: impl AsRef<Path>) -> Result<Vec<String>, Error> {
    let path = path.as_ref();
    let shown = if path.as_os_str() == "-" {
        Path::new("<stdin>")
    } else {
        path
    };
    let bytes = read_bytes(path).map_err(|source| Error::Read {
        path: shown.to_path_buf(),
        source,
    })?;
    lines_from_bytes(shown, bytes)
}

/// Checks that every reference stream has as many lines as the hypotheses.
///
/// `hyp` and each reference carry a label (usually the file name) used in
/// the error message.
pub fn check_line_counts<S: AsRef<[String]>>(
    hyp: (&str, &[String]),
    refs: &[(&str, S)],
) -> Result<(), Error> {
    if refs.is_empty() {
        return Err(Error::NoReferences);
    }
    for (label, lines) in refs {
        let n = lines.as_ref().len();
        if n != hyp.1.len() {
            return Err(Error::LineCountMismatch {
                hyp: hyp.0.to_string(),
                hyp_lines: hyp.1.len(),
                reference: (*label).to_string(),
                ref_lines: n,
            });
        }
    }
    Ok(())
}

/// Applies `segment` to every hypothesis and its references (one line of
/// each reference stream), after checking the streams' lengths.
pub(crate) fn per_segment<'a, H, R, RS, S>(
    hyps: &'a [H],
    refs: &'a [RS],
    mut segment: impl FnMut(&'a str, &mut dyn Iterator<Item = &'a str>) -> S,
) -> Result<Vec<S>, Error>
where
    H: AsRef<str>,
    R: AsRef<str> + 'a,
    RS: AsRef<[R]>,
{
    check_streams(hyps.len(), refs)?;
    Ok(hyps
        .iter()
        .enumerate()
        .map(|(i, hyp)| {
            let mut seg_refs = refs.iter().map(|stream| stream.as_ref()[i].as_ref());
            segment(hyp.as_ref(), &mut seg_refs)
        })
        .collect())
}

/// Checks that there is at least one reference stream and that every
/// stream has one line per hypothesis.
fn check_streams<R: AsRef<str>, RS: AsRef<[R]>>(
    hyp_lines: usize,
    refs: &[RS],
) -> Result<(), Error> {
    if refs.is_empty() {
        return Err(Error::NoReferences);
    }
    for (k, stream) in refs.iter().enumerate() {
        let n = stream.as_ref().len();
        if n != hyp_lines {
            return Err(Error::LineCountMismatch {
                hyp: "hypotheses".to_string(),
                hyp_lines,
                reference: format!("reference stream {}", k + 1),
                ref_lines: n,
            });
        }
    }
    Ok(())
}

fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin().lock().read_to_end(&mut raw)?;
        return Ok(raw);
    }
    let mut file = File::open(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(file).read_to_end(&mut raw)?;
    } else {
        file.read_to_end(&mut raw)?;
    }
    Ok(raw)
}

fn lines_from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Vec<String>, Error> {
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let bad = err.utf8_error().valid_up_to();
            let line = 1 + err.as_bytes()[..bad]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            return Err(Error::InvalidUtf8 {
                path: PathBuf::from(path),
                line,
            });
        }
    };
    let body = text.strip_suffix('\n').unwrap_or(&text);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    Ok(body
        .split('\n')
        .map(|line| py_rstrip(line).to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8]) -> Vec<String> {
        lines_from_bytes(Path::new("t.txt"), bytes.to_vec()).unwrap()
    }

    #[test]
    fn splits_like_python_file_iteration() {
        assert_eq!(lines(b""), Vec::<String>::new());
        assert_eq!(lines(b"\n"), vec![""]);
        assert_eq!(lines(b"a\nb"), vec!["a", "b"]);
        assert_eq!(lines(b"a\nb\n"), vec!["a", "b"]);
        assert_eq!(lines(b"a\n\nb\n\n"), vec!["a", "", "b", ""]);
    }

    #[test]
    fn strips_trailing_whitespace_only() {
        assert_eq!(lines(b"  a b \t\r\n c\r\n"), vec!["  a b", " c"]);
        // U+2028 is not a line break for Python's newline="\n" reading.
        assert_eq!(lines("a\u{2028}b\n".as_bytes()), vec!["a\u{2028}b"]);
        assert_eq!(lines("a\u{3000}\n".as_bytes()), vec!["a"]);
    }

    #[test]
    fn invalid_utf8_names_line() {
        let err = lines_from_bytes(Path::new("x.txt"), b"ok\nfine\nbad \xff\n".to_vec());
        let msg = err.unwrap_err().to_string();
        assert_eq!(msg, "reading x.txt: line 3 is not valid UTF-8");
    }

    #[test]
    fn missing_file_names_it() {
        let err = read_lines("/nonexistent/dir/hyp.txt").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/dir/hyp.txt"));
    }

    #[test]
    fn line_count_check_names_both() {
        let hyp = vec!["a".to_string(); 3];
        let refs = vec!["a".to_string(); 2];
        let err = check_line_counts(("h.txt", &hyp), &[("r.txt", &refs)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line counts differ: h.txt has 3 lines, r.txt has 2"
        );
        assert!(check_line_counts(("h", &hyp), &[("r", &hyp)]).is_ok());
    }
}
