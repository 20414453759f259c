"""scripts/check_layers.py on small source trees built for each case.

The script runs as a subprocess, as `make test` runs it: each case writes a
src/ tree into a temporary directory and reads the exit status and output.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_layers.py"

LIB = "pub mod config;\npub mod smtp;\npub mod delivery;\n"


def write_tree(root: Path, files: dict[str, str]) -> Path:
    src = root / "src"
    for name, body in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body).lstrip("\n"))
    return src


def run(src: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(src)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def check(tmp_path: Path, files: dict[str, str]) -> tuple[int, str]:
    result = run(write_tree(tmp_path, files))
    assert result.stderr == "", result.stderr
    assert result.stdout.strip(), "no summary line"
    return result.returncode, result.stdout


def cycle_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("cycle: ")]


CLEAN = {
    "lib.rs": LIB,
    "config.rs": """
        //! Settings. `crate::delivery::Policy` in a comment is not an import.
        pub struct ConfigError;
        pub const HINT: &str = "see crate::delivery::Policy";
        #[cfg(test)]
        mod tests {
            use super::*;
            #[test]
            fn named() { let _ = ConfigError; }
        }
    """,
    "smtp/mod.rs": """
        mod outcome;
        mod session;
        #[cfg(test)]
        mod tests;
        pub use outcome::Outcome;
        pub use session::Session;
    """,
    "smtp/outcome.rs": """
        pub struct Outcome;
    """,
    "smtp/session.rs": """
        use super::Outcome;
        use crate::config::ConfigError;
        pub struct Session(pub Outcome);
        pub fn fail() -> ConfigError { ConfigError }
    """,
    "smtp/tests.rs": """
        use super::*;
        use crate::smtp::session::fail;
        #[test]
        fn sessions() { let _ = (Session(Outcome), fail()); }
    """,
    "delivery/mod.rs": """
        pub mod policy;
        pub use policy::Policy;
    """,
    "delivery/policy.rs": """
        use crate::smtp::{Outcome, Session};
        pub struct Policy(pub Session);
        pub fn judge(o: Outcome) -> crate::config::ConfigError { let _ = o; crate::config::ConfigError }
    """,
}


def test_a_clean_tree_passes(tmp_path):
    code, out = check(tmp_path, CLEAN)
    assert code == 0, out
    assert out.splitlines() == [out.splitlines()[-1]], out
    summary = out.splitlines()[-1]
    assert summary.startswith("check_layers: 8 files")
    assert "no cycle, no upward import" in summary


def test_a_two_file_cycle_fails_naming_both_files(tmp_path):
    files = dict(CLEAN)
    files["smtp/outcome.rs"] = """
        use crate::smtp::session::Session;
        pub struct Outcome;
        pub fn first(s: &Session) -> &Outcome { &s.0 }
    """
    code, out = check(tmp_path, files)
    assert code == 1, out
    cycles = cycle_lines(out)
    assert len(cycles) == 1, out
    assert "src/smtp/outcome.rs" in cycles[0] and "src/smtp/session.rs" in cycles[0], out
    # Each step names the line that makes it.
    assert "src/smtp/outcome.rs:1 uses crate::smtp::session::Session" in out, out
    assert "src/smtp/session.rs:1 uses super::Outcome" in out, out
    assert "1 cycle" in out.splitlines()[-1]


def test_a_three_file_cycle_through_super_fails(tmp_path):
    files = dict(CLEAN)
    files["smtp/mod.rs"] = """
        mod outcome;
        mod session;
        mod wire;
        pub use outcome::Outcome;
        pub use session::Session;
    """
    files["smtp/session.rs"] = """
        use super::wire::Wire;
        pub struct Session(pub Wire);
    """
    files["smtp/wire.rs"] = """
        pub struct Wire;
        impl Wire {
            pub fn outcome(&self) -> super::outcome::Outcome { super::outcome::Outcome::new() }
        }
    """
    files["smtp/outcome.rs"] = """
        pub struct Outcome;
        impl Outcome {
            pub fn new() -> Self { Outcome }
            pub fn of(s: &super::Session) -> Self { let _ = s; Outcome }
        }
    """
    files["delivery/policy.rs"] = """
        pub struct Policy;
    """
    code, out = check(tmp_path, files)
    assert code == 1, out
    cycles = cycle_lines(out)
    assert len(cycles) == 1, out
    chain = cycles[0].removeprefix("cycle: ").split(" -> ")
    assert len(chain) == 4 and chain[0] == chain[-1], cycles
    assert set(chain) == {"src/smtp/outcome.rs", "src/smtp/session.rs", "src/smtp/wire.rs"}
    assert "src/smtp/wire.rs:3 uses super::outcome::Outcome" in out, out


def test_a_re_export_through_mod_rs_is_followed_and_makes_no_false_cycle(tmp_path):
    # session.rs names Outcome through smtp/mod.rs, which re-exports it and
    # also re-exports Session: were the path to stop at mod.rs, mod.rs and
    # session.rs would form a cycle.
    files = dict(CLEAN)
    files["smtp/mod.rs"] = """
        mod outcome;
        mod session;
        pub use outcome::{Outcome, Verdict as Judgement};
        pub use session::Session;
    """
    files["smtp/outcome.rs"] = """
        pub struct Outcome;
        pub enum Verdict { Sent }
    """
    files["smtp/session.rs"] = """
        use super::Outcome;
        pub struct Session(pub Outcome);
        pub fn judged() -> crate::smtp::Judgement { crate::smtp::Judgement::Sent }
    """
    code, out = check(tmp_path, files)
    assert code == 0, out
    edges = subprocess.run(
        [sys.executable, str(SCRIPT), "--edges", str(tmp_path / "src")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "src/smtp/session.rs:1: super::Outcome -> src/smtp/outcome.rs" in edges, edges
    assert "src/smtp/session.rs:3: crate::smtp::Judgement -> src/smtp/outcome.rs" in edges, edges
    assert "src/smtp/session.rs:1: super::Outcome -> src/smtp/mod.rs" not in edges, edges


def test_a_parent_that_calls_into_a_child_importing_it_is_a_cycle(tmp_path):
    files = dict(CLEAN)
    files["config.rs"] = """
        mod numbers;
        pub struct ConfigError;
        pub fn parse() -> u32 { numbers::parse() }
    """
    files["config/numbers.rs"] = """
        use super::ConfigError;
        pub fn parse() -> u32 { let _ = ConfigError; 1 }
    """
    code, out = check(tmp_path, files)
    assert code == 1, out
    assert cycle_lines(out) == ["cycle: src/config.rs -> src/config/numbers.rs -> src/config.rs"], out
    assert "src/config.rs:3 uses numbers::parse" in out, out


def test_an_upward_import_fails_naming_the_line(tmp_path):
    files = dict(CLEAN)
    files["smtp/session.rs"] = """
        use super::Outcome;

        pub struct Session(pub Outcome);

        pub fn policy() -> crate::delivery::Policy {
            todo!()
        }
    """
    code, out = check(tmp_path, files)
    assert code == 1, out
    upward = [line for line in out.splitlines() if line.startswith("upward import: ")]
    assert upward == [
        "upward import: src/smtp/session.rs:5: crate::delivery::Policy: "
        "smtp (layer 1) imports delivery (layer 4, src/delivery/policy.rs)"
    ], out
    assert "1 upward import" in out.splitlines()[-1]


def test_an_upward_import_in_a_use_group_is_found(tmp_path):
    files = dict(CLEAN)
    files["config.rs"] = """
        use crate::{
            delivery::policy::{self, judge},
            smtp::Outcome,
        };
        pub struct ConfigError;
        pub fn f(o: Outcome) { let _ = (judge(o), policy::Policy); }
    """
    code, out = check(tmp_path, files)
    assert code == 1, out
    assert "upward import: src/config.rs:2: crate::delivery::policy::judge:" in out, out
    assert "upward import: src/config.rs:6: policy::Policy:" in out, out
    assert "upward import: src/config.rs:3: crate::smtp::Outcome:" in out, out


def test_an_undeclared_top_module_fails(tmp_path):
    files = dict(CLEAN)
    files["lib.rs"] = LIB + "pub mod api;\n"
    files["api/mod.rs"] = "pub mod keys;\n"
    files["api/keys.rs"] = "pub struct Key;\n"
    files["config.rs"] = """
        pub struct ConfigError;
        pub fn key() -> crate::api::keys::Key { crate::api::keys::Key }
    """
    code, out = check(tmp_path, files)
    assert code == 1, out
    assert "undeclared module: `api` (src/api/mod.rs) is not in LAYERS" in out, out
    assert "imported by src/config.rs:2 (crate::api::keys::Key)" in out, out
    assert "1 undeclared module" in out.splitlines()[-1]


def test_test_code_is_left_out_of_cycles_but_not_out_of_layers(tmp_path):
    files = dict(CLEAN)
    files["smtp/outcome.rs"] = """
        pub struct Outcome;
        #[cfg(test)]
        mod tests {
            use super::*;
            use crate::smtp::session::Session;
            #[test]
            fn wraps() { let _ = Session(Outcome); }
        }
    """
    code, out = check(tmp_path, files)
    assert code == 0, out
    files["smtp/tests.rs"] = """
        use super::*;
        use crate::delivery::Policy;
        #[test]
        fn upward() { let _ = Policy(Session(Outcome)); }
    """
    code, out = check(tmp_path, files)
    assert code == 1, out
    assert "upward import: src/smtp/tests.rs:2: crate::delivery::Policy:" in out, out


def test_strings_comments_and_mod_declarations_are_not_imports(tmp_path):
    files = dict(CLEAN)
    files["smtp/outcome.rs"] = r'''
        /* crate::delivery::Policy /* nested */ still a comment */
        pub struct Outcome;
        pub const A: &str = r#"use crate::delivery::Policy; "quoted""#;
        pub const B: char = '"';
        pub const C: &str = "\" crate::delivery::Policy";
        pub fn f<'a>(s: &'a str) -> &'a str { s }
    '''
    code, out = check(tmp_path, files)
    assert code == 0, out


def test_braces_in_literals_do_not_upset_module_scopes(tmp_path):
    # Were any of the braces in these literals counted, `inner` would seem
    # not to close, and `super::session` below would be read from inside it.
    files = dict(CLEAN)
    files["smtp/outcome.rs"] = r'''
        pub struct Outcome;
        pub struct Holder<'a>(&'a str);
        mod inner {
            pub const OPEN: char = '{';
            pub const TEXT: &str = "{{ \" {";
            pub const RAW: &[u8] = br#"{"}"#;
        }
        pub fn session() -> super::session::Session { todo!() }
    '''
    code, out = check(tmp_path, files)
    assert code == 1, out
    assert cycle_lines(out) == [
        "cycle: src/smtp/outcome.rs -> src/smtp/session.rs -> src/smtp/outcome.rs"
    ], out
    assert "src/smtp/outcome.rs:8 uses super::session::Session" in out, out
