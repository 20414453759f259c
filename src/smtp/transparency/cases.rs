//! The transparency table: message content, and the exact bytes that must
//! go on the wire for it under DATA (CRLF-normalised, dot-stuffed, with the
//! terminator) and BDAT (CRLF-normalised only).
//!
//! Test data. The unit tests check the encoder against it byte for
//! byte; the real-server tests (tests/real_servers) send every input to a
//! real SMTP server and check that exactly one message arrives, intact. The
//! rows include every known way to end DATA early on a strict or lenient
//! server (SMTP smuggling).
//! Must not: derive expected bytes from the encoder: every row is written out
//! by hand, so a broken encoder cannot agree with its own tests.

/// (input, exact DATA bytes, exact BDAT bytes)
pub const TRANSPARENCY_CASES: &[(&[u8], &[u8], &[u8])] = &[
    (b"", b".\r\n", b""),
    (b"Hi\r\n", b"Hi\r\n.\r\n", b"Hi\r\n"),
    (b"Hi", b"Hi\r\n.\r\n", b"Hi\r\n"),
    (b"a\nb\n", b"a\r\nb\r\n.\r\n", b"a\r\nb\r\n"),
    (b"a\rb\r", b"a\r\nb\r\n.\r\n", b"a\r\nb\r\n"),
    (b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n", b"a\r\n\r\nb\r\n"),
    (b"a\n\rb", b"a\r\n\r\nb\r\n.\r\n", b"a\r\n\r\nb\r\n"),
    // A dot first in the body.
    (b".hidden\r\n", b"..hidden\r\n.\r\n", b".hidden\r\n"),
    (b".\r\n", b"..\r\n.\r\n", b".\r\n"),
    // `.` alone at the end without a newline.
    (b"body\r\n.", b"body\r\n..\r\n.\r\n", b"body\r\n.\r\n"),
    (b".", b"..\r\n.\r\n", b".\r\n"),
    // Sequences that would end DATA early on a strict or lenient server.
    (
        b"a\r\n.\r\nQUIT\r\n",
        b"a\r\n..\r\nQUIT\r\n.\r\n",
        b"a\r\n.\r\nQUIT\r\n",
    ),
    (b"a\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n", b"a\r\n.\r\nb\r\n"),
    (b"a\r.\r\nb", b"a\r\n..\r\nb\r\n.\r\n", b"a\r\n.\r\nb\r\n"),
    (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n", b"a\r\n.\r\nb\r\n"),
    (b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n", b"a\r\n.\r\nb\r\n"),
    (b"a\r\n..\r\n", b"a\r\n...\r\n.\r\n", b"a\r\n..\r\n"),
    // Dots not at a line start are left alone.
    (b"a.b\r\n x.\r\n", b"a.b\r\n x.\r\n.\r\n", b"a.b\r\n x.\r\n"),
    // NUL and other bytes pass through untouched.
    (
        b"a\0b\r\n\0.\r\n",
        b"a\0b\r\n\0.\r\n.\r\n",
        b"a\0b\r\n\0.\r\n",
    ),
    (
        b"\xc3\xa9t\xc3\xa9\n",
        b"\xc3\xa9t\xc3\xa9\r\n.\r\n",
        b"\xc3\xa9t\xc3\xa9\r\n",
    ),
];
