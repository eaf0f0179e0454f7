//! The one writer of everything the tool says, on stdout and stderr: it never panics.
//!
//! `println!` and `eprintln!` panic when a write fails, and writes do fail: `| head -1` closes
//! stdout after its line, a closed terminal takes stderr with it. Every line goes through
//! here instead, and clippy's `print_stdout` and `print_stderr` lints keep it so.
//!
//! A closed stdout (EPIPE) ends the tool at once, quietly, with status 141: what a shell
//! reports for a program SIGPIPE ended, so `set -o pipefail` scripts see what they see of any
//! other program, and `cargo xtask` adds nothing (it does not report an exit code as it
//! reports a signal). Rust ignores SIGPIPE, which is why the write fails rather than the
//! signal ending the tool; restoring SIGPIPE would end it in the middle of a build too. So
//! while work that must not be cut off is under way (a build whose VM packer must delete, a
//! download: [`term::work_must_finish`]), the rest of stdout is dropped and the work goes on to
//! its end, as under `nohup`. Any other failed write (stderr gone) is ignored: what the tool
//! says is lost, what it does is not.
//!
//! In a log read later (stdout not a terminal, or `--timestamps`), every line on either stream
//! starts with the time in UTC, packer's relayed lines included: a line is stamped when its
//! first byte is written, so a line written in pieces gets one stamp.
//!
//! With `--format json` stdout carries records only ([`record`], JSON Lines, never stamped) and
//! everything the tool would have written there goes to stderr. A command adopts it in a few
//! lines: a `FormatFlags` flattened into its flags, `start()` first, then [`record`] for each
//! `model::records::Record`, a `Result` last; a failure's result is written for it.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{session, term};

/// The status of a tool that stopped because its stdout was closed: 128 + SIGPIPE (13).
pub const CLOSED_PIPE: i32 = 128 + 13;

/// Prints to stdout; see the module's description for what happens when it is closed.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write($crate::output::Stream::Stdout, format_args!($($arg)*))
    };
}

/// Prints a line to stdout.
macro_rules! outln {
    () => {
        $crate::output::write($crate::output::Stream::Stdout, format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_line($crate::output::Stream::Stdout, format_args!($($arg)*))
    };
}

/// Prints to stderr; a failed write is ignored.
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::output::write($crate::output::Stream::Stderr, format_args!($($arg)*))
    };
}

/// Prints a line to stderr; a failed write is ignored.
macro_rules! errln {
    () => {
        $crate::output::write($crate::output::Stream::Stderr, format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_line($crate::output::Stream::Stderr, format_args!($($arg)*))
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What to do about a write that failed.
#[derive(Debug, PartialEq, Eq)]
enum Failed {
    /// End the tool, as SIGPIPE would have.
    End,
    /// Go on; what is written to the stream from now on is dropped.
    DropTheRest,
    /// Go on; the stream may work again (a full disk, an interrupted write).
    Ignore,
}

/// The decision about a failed write, from the stream, the error, and whether work is under
/// way that ending now would leave half done.
fn on_failure(stream: Stream, error: io::ErrorKind, work_must_finish: bool) -> Failed {
    match (stream, error) {
        (Stream::Stdout, io::ErrorKind::BrokenPipe) if work_must_finish => Failed::DropTheRest,
        (Stream::Stdout, io::ErrorKind::BrokenPipe) => Failed::End,
        _ => Failed::Ignore,
    }
}

/// What the writer keeps about one run's streams (see [`crate::session`]).
pub struct State {
    /// Set once stdout was found closed while work had to go on: nothing more is written to it.
    stdout_closed: AtomicBool,
    /// Whether stdout carries `--format json` records; the tool's text then goes to stderr.
    records: AtomicBool,
    /// Whether the command's `result` record was written: a failure after it writes no second.
    result_written: AtomicBool,
    /// Whether every line starts with the time.
    timestamps: AtomicBool,
    /// The command running, for a `result` written where only the end is known (a signal).
    command: std::sync::Mutex<Option<&'static str>>,
    /// For stdout and stderr: whether the next byte written to it starts a line. Read and
    /// written only under the stream's lock.
    at_line_start: [AtomicBool; 2],
}

impl Default for State {
    fn default() -> State {
        State {
            stdout_closed: AtomicBool::new(false),
            records: AtomicBool::new(false),
            result_written: AtomicBool::new(false),
            timestamps: AtomicBool::new(false),
            command: std::sync::Mutex::new(None),
            at_line_start: [AtomicBool::new(true), AtomicBool::new(true)],
        }
    }
}

/// From now on stdout carries only records, and the text meant for it goes to stderr.
pub fn records_on_stdout() {
    session::current()
        .output
        .records
        .store(true, Ordering::SeqCst);
}

/// Whether stdout carries records.
pub fn writes_records() -> bool {
    session::current().output.records.load(Ordering::SeqCst)
}

/// Writes `record` as one line of JSON on stdout, when records were asked for; the last
/// record, a `result`, is written only once.
pub fn record(record: &crate::model::records::Record) {
    let session = session::current();
    let state = &session.output;
    if !state.records.load(Ordering::SeqCst) || state.stdout_closed.load(Ordering::SeqCst) {
        return;
    }
    if matches!(record, crate::model::records::Record::Result(_))
        && state.result_written.swap(true, Ordering::SeqCst)
    {
        return;
    }
    // Plain data of strings, numbers and booleans: serialising it cannot fail.
    let Ok(mut line) = serde_json::to_string(record) else {
        return;
    };
    line.push('\n');
    let result = session.write_to(true, |to| {
        to.write_all(line.as_bytes()).and_then(|()| to.flush())
    });
    if let Err(error) = result {
        failed(state, Stream::Stdout, error);
    }
}

/// Names the command this run is, for [`result_of_the_end`].
pub fn command_is(command: &'static str) {
    *session::current()
        .output
        .command
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(command);
}

/// Writes the `result` of a run that ends where it stands (a signal during a wait), with its
/// exit status and why, unless a result was written already.
pub fn result_of_the_end(exit_code: i32, error: &str) {
    let command = *session::current()
        .output
        .command
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(command) = command {
        record(&crate::model::records::Record::Result(
            crate::model::records::Outcome::failed(command, exit_code, error.to_string()),
        ));
    }
}

/// Starts (or stops) putting the time before every line, for a log read later.
pub fn stamp_lines(on: bool) {
    session::current()
        .output
        .timestamps
        .store(on, Ordering::SeqCst);
}

/// Whether lines carry the time: a child's output must then come through the tool.
pub fn stamps_lines() -> bool {
    session::current().output.timestamps.load(Ordering::SeqCst)
}

/// A stream's writer that puts `stamp` before each line's first byte.
struct Stamped<'a, W: Write> {
    to: W,
    stamp: Option<&'a [u8]>,
    at_line_start: &'a AtomicBool,
}

impl<W: Write> Write for Stamped<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for piece in buf.split_inclusive(|&b| b == b'\n') {
            if let (Some(stamp), true) = (self.stamp, self.at_line_start.load(Ordering::SeqCst)) {
                self.to.write_all(stamp)?;
            }
            self.to.write_all(piece)?;
            self.at_line_start
                .store(piece.ends_with(b"\n"), Ordering::SeqCst);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.to.flush()
    }
}

/// Writes `text` to `stream`. The macros call this.
pub fn write(stream: Stream, text: fmt::Arguments<'_>) {
    emit(stream, |to| to.write_fmt(text));
}

/// Writes `text` and a newline to `stream` under one lock, so that a line written by one
/// thread never takes in bytes of another's.
pub fn write_line(stream: Stream, text: fmt::Arguments<'_>) {
    emit(stream, |to| {
        to.write_fmt(text)?;
        to.write_all(b"\n")
    });
}

/// Writes `bytes` as they are (another program's output, which need not be UTF-8) and flushes.
pub fn write_bytes(stream: Stream, bytes: &[u8]) {
    emit(stream, |to| to.write_all(bytes).and_then(|()| to.flush()));
}

fn emit(stream: Stream, put: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
    let session = session::current();
    let state = &session.output;
    let stamp = state.timestamps.load(Ordering::SeqCst).then(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        format!("{} ", crate::model::time::utc_timestamp(now))
    });
    let stamped = |to: &mut dyn Write, at_line_start: &AtomicBool| {
        put(&mut Stamped {
            to,
            stamp: stamp.as_deref().map(str::as_bytes),
            at_line_start,
        })
    };
    // With records on stdout, the text goes to stderr.
    let stream = match stream {
        Stream::Stdout if state.records.load(Ordering::SeqCst) => Stream::Stderr,
        stream => stream,
    };
    // The stream's lock is let go before the tool may end: ending flushes stdout.
    let result = match stream {
        Stream::Stdout if state.stdout_closed.load(Ordering::SeqCst) => return,
        Stream::Stdout => session.write_to(true, |to| stamped(to, &state.at_line_start[0])),
        Stream::Stderr => session.write_to(false, |to| stamped(to, &state.at_line_start[1])),
    };
    if let Err(error) = result {
        failed(state, stream, error);
    }
}

/// Whether a child's output comes through the tool rather than going straight to the terminal:
/// when stdout is not a terminal (a pipe, a log, a test's run: a reader that goes away must not
/// end the child with SIGPIPE), when lines carry the time, which the tool puts there, and when
/// stdout carries JSON records, which the child's text must not reach.
pub fn children_through_the_tool() -> bool {
    !session::is_terminal(session::Stdio::Stdout) || stamps_lines() || writes_records()
}

/// Runs `cmd` with its output where the tool's own goes: straight to the terminal while the
/// tool writes there plainly (git's and packer's progress as they draw it), else through the
/// tool once it ends ([`children_through_the_tool`]). Fails as `cmd.run()` fails.
pub fn run_child(cmd: xshell::Cmd<'_>) -> anyhow::Result<()> {
    if !children_through_the_tool() {
        return Ok(cmd.run()?);
    }
    relayed(cmd, true).map(drop)
}

/// [`run_child`] for a child whose stdout is read: it is returned (without its last newline, as
/// `cmd.read()` returns it), and only the child's stderr is passed on.
pub fn read_child(cmd: xshell::Cmd<'_>) -> anyhow::Result<String> {
    if !children_through_the_tool() {
        return Ok(cmd.read()?);
    }
    let shown = cmd.to_string();
    let mut text = String::from_utf8(relayed(cmd, false)?)
        .map_err(|_| anyhow::anyhow!("`{shown}` wrote output that is not UTF-8"))?;
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

/// Runs `cmd` to its end, passes on its stderr (and its stdout when `pass_stdout`), and fails
/// with the words of `cmd.run()`; its stdout.
fn relayed(cmd: xshell::Cmd<'_>, pass_stdout: bool) -> anyhow::Result<Vec<u8>> {
    let shown = cmd.to_string();
    let out = cmd.ignore_status().output()?;
    if pass_stdout {
        write_bytes(Stream::Stdout, &out.stdout);
    }
    write_bytes(Stream::Stderr, &out.stderr);
    match out.status.code() {
        Some(0) => Ok(out.stdout),
        Some(code) => anyhow::bail!("command exited with non-zero code `{shown}`: {code}"),
        None => anyhow::bail!("command was terminated by a signal `{shown}`"),
    }
}

/// What a failed write to `stream` does: see the module's description.
fn failed(state: &State, stream: Stream, error: io::Error) {
    match on_failure(stream, error.kind(), term::work_must_finish()) {
        Failed::End => std::process::exit(CLOSED_PIPE),
        Failed::DropTheRest => state.stdout_closed.store(true, Ordering::SeqCst),
        Failed::Ignore => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use io::ErrorKind::{BrokenPipe, Interrupted, StorageFull};

    #[test]
    fn a_stamp_starts_each_line_once_however_it_is_written() {
        let at_line_start = AtomicBool::new(true);
        let mut written = Vec::new();
        let mut to = Stamped {
            to: &mut written,
            stamp: Some(b"T "),
            at_line_start: &at_line_start,
        };
        to.write_all(b"one").unwrap();
        to.write_all(b" line\ntwo\n\nthree").unwrap();
        to.write_all(b" ends\n").unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            "T one line\nT two\nT \nT three ends\n"
        );
        assert!(at_line_start.load(Ordering::SeqCst));
    }

    #[test]
    fn a_closed_stdout_ends_the_tool_unless_work_must_finish() {
        assert_eq!(on_failure(Stream::Stdout, BrokenPipe, false), Failed::End);
        assert_eq!(
            on_failure(Stream::Stdout, BrokenPipe, true),
            Failed::DropTheRest
        );
    }

    #[test]
    fn other_failures_and_stderr_never_end_the_tool() {
        for must_finish in [false, true] {
            for error in [BrokenPipe, StorageFull, Interrupted] {
                assert_eq!(
                    on_failure(Stream::Stderr, error, must_finish),
                    Failed::Ignore
                );
            }
            assert_eq!(
                on_failure(Stream::Stdout, StorageFull, must_finish),
                Failed::Ignore
            );
        }
    }
}
