//! `read {path, offset?, limit?}`: a text file with `cat -n` line numbers,
//! or an image file (PNG, JPEG, GIF, WebP: `image.rs`) shown to the model.
//!
//! The file is streamed line by line and each line is capped while it is
//! read, so a huge file or a minified one-line file costs only what is
//! shown. A file system that serves lines (the editor's, `acp/client_fs.rs`)
//! is asked for the window shown and one line more. When the output stops early, the closing note gives the exact
//! `offset` to continue from.

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::args::Args;
use super::fsutil::{looks_binary, open_error, BINARY_SNIFF_BYTES};
use super::image::{self, ImageType, MAX_IMAGE_BYTES};
use super::tool::Builtin;
use super::{
    blocking, paths, Access, FileKind, FileSystem, Preview, ToolCtx, ToolImage, ToolOutput,
};

const DEFAULT_LIMIT: u64 = 2000;
/// Longer lines are cut; one minified line should not fill the context.
const MAX_LINE_CHARS: usize = 2000;
/// Room for `MAX_LINE_CHARS` characters of up to 4 bytes each.
const MAX_LINE_BYTES: usize = MAX_LINE_CHARS * 4;
/// The whole result stays under this, whatever `limit` says.
const MAX_OUTPUT_BYTES: usize = 50 * 1024;
/// Counting the lines after the cut costs a scan; past this much the note
/// says "more" instead of a total.
const MAX_COUNT_BYTES: u64 = 64 * 1024 * 1024;

/// A call's input, checked.
pub(crate) struct Input {
    path: PathBuf,
    shown: String,
    offset: u64,
    limit: u64,
}

/// `read` as the tool table holds it.
pub(crate) struct ReadTool;

impl Builtin for ReadTool {
    type Input = Input;
    const NAME: &'static str = "read";
    const ACCESS: Access = Access::ReadOnly;
    const SUMMARY: &'static str = "Read a file, with line numbers; read a file before you edit it.";

    fn definition() -> Value {
        json!({
            "name": Self::NAME,
            "description": "Read a text file. Lines are numbered like `cat -n` (number, tab, line). \
                Reads up to 2000 lines (and about 50 KB) from `offset`; a note at the end says which \
                offset to use to read further. Lines over 2000 characters are cut. An image file \
                (PNG, JPEG, GIF, WebP; up to 5 MB) is shown to you as an image. Other binary files \
                and directories are refused (use ls for directories).",
            "input_schema": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File to read, absolute or relative to the working directory."},
                    "offset": {"type": "integer", "minimum": 1, "description": "1-based line number to start at (default 1)."},
                    "limit": {"type": "integer", "minimum": 1, "description": "Maximum number of lines to return (default 2000)."}
                },
                "required": ["path"]
            }
        })
    }

    fn parse(input: &Value, cwd: &Path) -> Result<Self::Input> {
        let args = Args::new(Self::NAME, input)?;
        let raw = args.string("path")?;
        let offset = args.opt_u64("offset")?.unwrap_or(1);
        if offset == 0 {
            bail!("read: `offset` is 1-based; the first line is 1");
        }
        let limit = args.opt_u64("limit")?.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 {
            bail!("read: `limit` must be at least 1");
        }
        let path = paths::resolve(cwd, raw).context("read")?;
        let shown = paths::display(cwd, &path);
        Ok(Input {
            path,
            shown,
            offset,
            limit,
        })
    }

    fn preview(i: Self::Input, _cwd: &Path, _fs: &dyn FileSystem) -> Result<Preview> {
        Ok(Preview {
            title: format!("Read {}", i.shown),
            diff: None,
            paths: vec![i.path],
        })
    }

    async fn run(i: Self::Input, ctx: &ToolCtx) -> ToolOutput {
        let fs = ctx.env.fs.clone();
        blocking(ctx, move |cancel| read_file(fs.as_ref(), &i, &cancel)).await
    }
}

/// Why the output stopped before the end of the file.
enum Cut {
    Limit,
    Size,
}

fn read_file(fs: &dyn FileSystem, i: &Input, cancel: &CancellationToken) -> Result<ToolOutput> {
    let shown = &i.shown;
    let meta = fs.metadata(&i.path).map_err(|e| open_error(e, shown))?;
    match meta.kind {
        FileKind::Dir => bail!("{shown} is a directory; use ls to list it"),
        // Opening a FIFO or a device could block forever or never end.
        FileKind::Other => bail!("{shown} is not a regular file"),
        FileKind::File => {}
    }
    // A file system serving lines (the editor's) serves text: an image is
    // looked for in its bytes only when its name says it is one.
    if ImageType::by_name(&i.path) {
        let mut file = fs.open(&i.path).map_err(|e| open_error(e, shown))?;
        let mut head = Vec::with_capacity(image::SNIFF_BYTES);
        (&mut file)
            .take(image::SNIFF_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(|e| anyhow!("cannot read {shown}: {e}"))?;
        if let Some(kind) = ImageType::sniff(&head) {
            return read_image(kind, head, file, meta.len, shown);
        }
    }
    // One line more than shown says whether the file goes on.
    if let Some(window) = fs.read_lines(&i.path, i.offset, i.limit.saturating_add(1)) {
        let text = window.map_err(|e| open_error(e, shown))?;
        let reader = BufReader::new(io::Cursor::new(text.into_bytes()));
        return number_lines(reader, Lines::Window, i, cancel).map(ToolOutput::ok);
    }
    let mut file = fs.open(&i.path).map_err(|e| open_error(e, shown))?;
    let mut head = Vec::with_capacity(BINARY_SNIFF_BYTES);
    (&mut file)
        .take(BINARY_SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| anyhow!("cannot read {shown}: {e}"))?;
    // By its bytes, whatever its name.
    if let Some(kind) = ImageType::sniff(&head) {
        return read_image(kind, head, file, meta.len, shown);
    }
    if looks_binary(&head) {
        bail!(
            "{shown} is a binary file ({} bytes); read shows text files only",
            meta.len
        );
    }
    let reader = BufReader::new(io::Cursor::new(head).chain(file));
    number_lines(reader, Lines::Whole, i, cancel).map(ToolOutput::ok)
}

/// An image file for the model: the whole file as a base64 image beside a
/// line naming it, or, over [`MAX_IMAGE_BYTES`], only the line. `head` is
/// what was read of it already.
fn read_image(
    kind: ImageType,
    mut bytes: Vec<u8>,
    rest: impl Read,
    len: u64,
    shown: &str,
) -> Result<ToolOutput> {
    use base64::Engine as _;
    if len > MAX_IMAGE_BYTES {
        return Ok(ToolOutput::ok(image::too_large(shown, kind, len)));
    }
    // Bounded even if the file grew since its size was read.
    rest.take(MAX_IMAGE_BYTES + 1 - bytes.len() as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_IMAGE_BYTES {
        return Ok(ToolOutput::ok(image::too_large(
            shown,
            kind,
            bytes.len() as u64,
        )));
    }
    let mut out = ToolOutput::ok(image::describe(shown, kind, &bytes));
    out.images.push(ToolImage {
        media_type: kind.media_type().to_owned(),
        data: base64::engine::general_purpose::STANDARD.encode(&bytes),
    });
    Ok(out)
}

/// What a reader given to [`number_lines`] holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lines {
    /// The file from its first line.
    Whole,
    /// The lines from `offset` on, as many as asked for and one more (the
    /// editor's window): the file's length is not known.
    Window,
}

fn number_lines(
    mut reader: impl BufRead,
    lines: Lines,
    i: &Input,
    cancel: &CancellationToken,
) -> Result<String> {
    let shown = &i.shown;
    let io_err = |e: io::Error| anyhow!("cannot read {shown}: {e}");
    let mut out = String::new();
    let mut buf = Vec::new();
    let mut line_no: u64 = match lines {
        Lines::Whole => 0,
        Lines::Window => i.offset - 1,
    };
    let mut shown_lines: u64 = 0;
    let mut cut = None;
    while let Some(byte_cut) = next_line(&mut reader, &mut buf, MAX_LINE_BYTES).map_err(io_err)? {
        line_no += 1;
        if line_no < i.offset {
            continue;
        }
        if shown_lines == i.limit {
            cut = Some(Cut::Limit);
            break;
        }
        let line = format_line(line_no, &buf, byte_cut);
        if out.len() + line.len() > MAX_OUTPUT_BYTES {
            cut = Some(Cut::Size);
            break;
        }
        out.push_str(&line);
        shown_lines += 1;
        if cancel.is_cancelled() {
            bail!("aborted");
        }
    }

    if line_no == 0 {
        return Ok(format!("({shown} is empty)"));
    }
    if shown_lines == 0 && cut.is_none() {
        match lines {
            Lines::Whole => bail!(
                "offset {} is past the end of {shown}, which has {line_no} lines",
                i.offset
            ),
            Lines::Window => bail!("offset {} is past the end of {shown}", i.offset),
        }
    }
    let Some(cut) = cut else {
        return Ok(out);
    };
    // `line_no` is the first line not shown; it was read, so count it too.
    let last = line_no - 1;
    let total = match lines {
        Lines::Whole => count_lines(&mut reader).map_err(io_err)?,
        Lines::Window => None,
    };
    let total = match total {
        Some(rest) => format!("{}", line_no + rest),
        None => "more".to_owned(),
    };
    let why = match cut {
        Cut::Limit => String::new(),
        Cut::Size => format!("Output capped at {} KB. ", MAX_OUTPUT_BYTES / 1024),
    };
    out.push_str(&format!(
        "\n[{why}Showing lines {}-{last} of {total}. Use offset={line_no} to read more.]",
        i.offset
    ));
    Ok(out)
}

/// `cat -n` style: the number right-aligned in six columns, a tab, the line.
fn format_line(n: u64, raw: &[u8], byte_cut: bool) -> String {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let text = String::from_utf8_lossy(raw);
    let cut_chars = text.char_indices().nth(MAX_LINE_CHARS).map(|(i, _)| i);
    match cut_chars {
        Some(at) => format!(
            "{n:>6}\t{}… [line cut at {MAX_LINE_CHARS} characters]\n",
            &text[..at]
        ),
        None if byte_cut => format!("{n:>6}\t{text}… [line cut at {MAX_LINE_CHARS} characters]\n"),
        None => format!("{n:>6}\t{text}\n"),
    }
}

/// Reads one line (without its `\n`) into `buf`, keeping at most `cap`
/// bytes and skipping the rest. `None` at end of file; otherwise whether
/// the line was cut.
fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<Option<bool>> {
    buf.clear();
    let mut any = false;
    let mut cut = false;
    loop {
        let avail = reader.fill_buf()?;
        if avail.is_empty() {
            return Ok(any.then_some(cut));
        }
        any = true;
        let newline = avail.iter().position(|&b| b == b'\n');
        let chunk = &avail[..newline.unwrap_or(avail.len())];
        let room = cap.saturating_sub(buf.len());
        if chunk.len() > room {
            cut = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = newline.map_or(avail.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(Some(cut));
        }
    }
}

/// Lines left in the reader, or `None` when there is too much to count.
fn count_lines(reader: &mut impl BufRead) -> io::Result<Option<u64>> {
    let mut lines = 0;
    let mut scanned: u64 = 0;
    let mut last = b'\n';
    loop {
        let avail = reader.fill_buf()?;
        if avail.is_empty() {
            break;
        }
        lines += avail.iter().filter(|&&b| b == b'\n').count() as u64;
        last = avail[avail.len() - 1];
        let n = avail.len();
        reader.consume(n);
        scanned += n as u64;
        if scanned > MAX_COUNT_BYTES {
            return Ok(None);
        }
    }
    // A last line without its newline is still a line.
    Ok(Some(lines + u64::from(last != b'\n')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_util::ctx;
    use crate::tools::Tool;
    use std::fs;

    /// A file system serving lines, as an editor does: `a.txt` holds
    /// lines "l1".."l9" in the editor, something else on disk.
    struct Editor(std::sync::Mutex<Vec<(u64, u64)>>);

    impl FileSystem for Editor {
        fn metadata(&self, path: &Path) -> io::Result<crate::tools::FileMeta> {
            crate::tools::LocalFs.metadata(path)
        }
        fn open(&self, _: &Path) -> io::Result<Box<dyn Read + Send>> {
            unreachable!("a file system serving lines is not opened whole")
        }
        fn write(&self, _: &Path, _: &[u8]) -> io::Result<bool> {
            unreachable!()
        }
        fn read_lines(&self, _: &Path, line: u64, limit: u64) -> Option<io::Result<String>> {
            self.0.lock().unwrap().push((line, limit));
            let all: Vec<String> = (1..=9).map(|n| format!("l{n}\n")).collect();
            let from = (line - 1) as usize;
            let to = (from + limit as usize).min(all.len());
            Some(Ok(all
                .get(from..to)
                .map(|l| l.concat())
                .unwrap_or_default()))
        }
    }

    #[test]
    fn an_editor_is_asked_for_the_window_and_one_line_more() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "on disk\n").unwrap();
        let editor = Editor(Default::default());
        let read = |input: Value| {
            let i = ReadTool::parse(&input, dir.path()).unwrap();
            read_file(&editor, &i, &CancellationToken::new()).map(|o| o.content)
        };
        let out = read(json!({"path": "a.txt", "offset": 3, "limit": 2})).unwrap();
        assert_eq!(
            out,
            "     3\tl3\n     4\tl4\n\n[Showing lines 3-4 of more. Use offset=5 to read more.]"
        );
        let out = read(json!({"path": "a.txt", "offset": 8})).unwrap();
        assert_eq!(out, "     8\tl8\n     9\tl9\n");
        let err = read(json!({"path": "a.txt", "offset": 12})).unwrap_err();
        assert_eq!(err.to_string(), "offset 12 is past the end of a.txt");
        assert_eq!(*editor.0.lock().unwrap(), [(3, 3), (8, 2001), (12, 2001)]);
    }

    /// Through the table's interface, as the turn runs it.
    async fn run(input: &Value, c: &ToolCtx) -> ToolOutput {
        ReadTool.run(input, c).await
    }

    async fn read(dir: &Path, input: Value) -> ToolOutput {
        let (c, _rx) = ctx(dir);
        run(&input, &c).await
    }

    fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    #[tokio::test]
    async fn numbers_lines_like_cat_n() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "alpha\nbeta\r\ngamma").unwrap();
        let out = read(dir.path(), json!({"path": "a.txt"})).await;
        assert!(!out.is_error);
        assert_eq!(out.content, "     1\talpha\n     2\tbeta\n     3\tgamma\n");
    }

    #[tokio::test]
    async fn offset_and_limit_with_a_note_to_continue() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("n.txt"), numbered(10)).unwrap();
        let out = read(
            dir.path(),
            json!({"path": "n.txt", "offset": 3, "limit": 2}),
        )
        .await;
        assert_eq!(
            out.content,
            "     3\tline 3\n     4\tline 4\n\n[Showing lines 3-4 of 10. Use offset=5 to read more.]"
        );
        let out = read(dir.path(), json!({"path": "n.txt", "offset": 9})).await;
        assert_eq!(out.content, "     9\tline 9\n    10\tline 10\n");
        let out = read(dir.path(), json!({"path": "n.txt", "offset": 11})).await;
        assert!(
            out.is_error && out.content.contains("past the end"),
            "{}",
            out.content
        );
        let out = read(dir.path(), json!({"path": "n.txt", "offset": 0})).await;
        assert!(out.is_error && out.content.contains("`offset`"));
    }

    #[tokio::test]
    async fn default_limit_is_2000_lines() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("big.txt"), "x\n".repeat(2500)).unwrap();
        let out = read(dir.path(), json!({"path": "big.txt"})).await;
        assert!(out.content.contains("  2000\tx\n"));
        assert!(!out.content.contains("  2001\t"));
        assert!(out
            .content
            .ends_with("[Showing lines 1-2000 of 2500. Use offset=2001 to read more.]"));
    }

    #[tokio::test]
    async fn output_is_capped_by_size_and_long_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let long = "y".repeat(3000);
        let text = format!("{long}\n").repeat(100);
        fs::write(dir.path().join("wide.txt"), text).unwrap();
        let out = read(dir.path(), json!({"path": "wide.txt"})).await;
        assert!(out.content.len() <= MAX_OUTPUT_BYTES + 200);
        let first = out.content.lines().next().unwrap();
        assert!(first.ends_with("… [line cut at 2000 characters]"));
        assert_eq!(first.matches('y').count(), 2000);
        assert!(
            out.content.contains(
                "[Output capped at 50 KB. Showing lines 1-25 of 100. Use offset=26 to read more.]"
            ),
            "{}",
            &out.content[out.content.len() - 120..]
        );
    }

    /// A PNG's signature and IHDR for a `w`×`h` image, then `pad` bytes.
    fn png(w: u32, h: u32, pad: usize) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0]);
        b.resize(b.len() + pad, 0);
        b
    }

    #[tokio::test]
    async fn an_image_file_is_shown_to_the_model() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let bytes = png(800, 600, 12 * 1024);
        fs::write(dir.path().join("shot.png"), &bytes).unwrap();
        let out = read(dir.path(), json!({"path": "shot.png"})).await;
        assert!(!out.is_error);
        assert_eq!(out.content, "Image shot.png (PNG, 800×600, 13 KB)");
        assert_eq!(out.images.len(), 1);
        assert_eq!(out.images[0].media_type, "image/png");
        let sent = base64::engine::general_purpose::STANDARD
            .decode(&out.images[0].data)
            .unwrap();
        assert_eq!(sent, bytes);

        // By its bytes, whatever its name; a name alone makes no image.
        fs::write(dir.path().join("shot.dat"), &bytes).unwrap();
        let out = read(dir.path(), json!({"path": "shot.dat"})).await;
        assert_eq!(out.images.len(), 1, "{}", out.content);
        fs::write(dir.path().join("fake.png"), "not an image\n").unwrap();
        let out = read(dir.path(), json!({"path": "fake.png"})).await;
        assert_eq!(out.content, "     1\tnot an image\n");
        assert!(out.images.is_empty());

        // Over 5 MB: named, not sent.
        let big = png(10, 10, 5 * 1024 * 1024);
        fs::write(dir.path().join("big.png"), &big).unwrap();
        let out = read(dir.path(), json!({"path": "big.png"})).await;
        assert!(!out.is_error && out.images.is_empty());
        assert!(
            out.content
                .starts_with("Image big.png (PNG, 5.0 MB) is over the 5 MB"),
            "{}",
            out.content
        );
    }

    #[tokio::test]
    async fn refuses_binaries_directories_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b.bin"), b"ab\0cd").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let out = read(dir.path(), json!({"path": "b.bin"})).await;
        assert!(
            out.is_error && out.content.contains("b.bin is a binary file"),
            "{}",
            out.content
        );
        let out = read(dir.path(), json!({"path": "sub"})).await;
        assert!(
            out.is_error && out.content.contains("use ls"),
            "{}",
            out.content
        );
        let out = read(dir.path(), json!({"path": "nope.txt"})).await;
        assert_eq!(out, ToolOutput::error("nope.txt does not exist"));
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let out = read(dir.path(), json!({"path": "fifo"})).await;
            assert_eq!(out, ToolOutput::error("fifo is not a regular file"));
        }
        fs::write(dir.path().join("empty.txt"), "").unwrap();
        let out = read(dir.path(), json!({"path": "empty.txt"})).await;
        assert_eq!(out, ToolOutput::ok("(empty.txt is empty)"));
    }
}
