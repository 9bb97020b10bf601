//! The one error type of the readers and writers.
//!
//! Every complaint about a malformed input names the byte offset (or line, for text) where the
//! problem was found and says what was wrong there, so a user can look at the file with `xxd`.

use std::path::PathBuf;

/// What went wrong while reading or writing a trace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input ended before a structure it announced.
    #[error("at offset {offset:#x}: truncated {what}: need {need} bytes, {have} left")]
    Truncated {
        /// Absolute byte offset in the (uncompressed view of the) file.
        offset: u64,
        /// The structure being read.
        what: &'static str,
        /// Bytes the structure needs.
        need: u64,
        /// Bytes that were left.
        have: u64,
    },
    /// A structure is present but its content is invalid.
    #[error("at offset {offset:#x}: {what}")]
    Malformed {
        /// Absolute byte offset of the bad structure.
        offset: u64,
        /// What is wrong with it.
        what: String,
    },
    /// A text input line could not be understood.
    #[error("line {line}: {what}")]
    BadLine {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        what: String,
    },
    /// A valid input that uses something this crate does not implement.
    #[error("at offset {offset:#x}: unsupported: {what}")]
    Unsupported {
        /// Where the unsupported feature was found.
        offset: u64,
        /// What it is.
        what: String,
    },
    /// A compressed block did not decompress.
    #[error("at offset {offset:#x}: cannot decompress {algo} block: {why}")]
    Decompress {
        /// Offset of the compressed block.
        offset: u64,
        /// The compression algorithm.
        algo: String,
        /// The decoder's complaint.
        why: String,
    },
    /// An event cannot be written in the requested output.
    #[error("cannot write event: {0}")]
    Write(String),
    /// Opening, reading or writing a file failed. (The system's error is
    /// part of the message, not a separate cause, so that error chains do
    /// not print it twice.)
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
    /// Writing to an output stream failed.
    #[error("output: {0}")]
    Output(#[from] std::io::Error),
    /// Something wrong inside compressed data: `error`'s offsets are into the
    /// data decompressed from the block at file offset `at` (so they can lie
    /// past the end of the file, which holds the data compressed).
    #[error("in the data decompressed from the block at {at:#x} (offsets into that data): {error}")]
    Compressed {
        /// File offset of the compressed block.
        at: u64,
        /// What was wrong, with offsets into the decompressed data.
        error: Box<Error>,
    },
    /// A structure the file points to lies past its end.
    #[error("{what} should be at offset {offset:#x}, past the end of the {len}-byte file: the file is cut short or that offset is corrupt")]
    PastEnd {
        /// Where the file says the structure is.
        offset: u64,
        /// The structure.
        what: &'static str,
        /// The file's length.
        len: u64,
    },
    /// A path that cannot hold a trace at all.
    #[error("{path} is not a trace: {why}")]
    NotATrace {
        /// The path.
        path: PathBuf,
        /// Why (a directory, an empty file).
        why: &'static str,
    },
    /// An output file that is one of the inputs (the same file, through any
    /// path, hard link or symbolic link): writing it would destroy the input.
    #[error("refusing to write {output}: it is the input {input}; choose another output file")]
    OutputIsInput {
        /// The output as given.
        output: PathBuf,
        /// The input as given.
        input: PathBuf,
    },
}

impl Error {
    /// A [`Error::Malformed`] at `offset`.
    pub fn malformed(offset: u64, what: impl Into<String>) -> Self {
        Error::Malformed {
            offset,
            what: what.into(),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}

impl Error {
    /// `self` for a file of `len` bytes: a truncation at or past its end is
    /// a structure the file points past its end.
    pub fn within(self, len: u64) -> Self {
        match self {
            Error::Truncated {
                offset, what, have: 0, ..
            } if offset >= len => Error::PastEnd { offset, what, len },
            e => e,
        }
    }

    /// `self`, found in the data decompressed from the block at `at`.
    pub fn in_compressed(self, at: u64) -> Self {
        Error::Compressed {
            at,
            error: Box::new(self),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
