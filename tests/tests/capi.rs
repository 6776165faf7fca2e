//! The C ABI (`backend-linux/capi`) as a C program sees it: the header
//! matches what the library exports, and a C program compiled by the system
//! C compiler against the header alone runs the reference scenario
//! (PROTOCOL section 7) on the FUSE test server, linked statically and
//! dynamically, with the flags of `wcfs.pc.in`.
//!
//! `wcfs-capi` is a dev-dependency of this crate, so cargo builds its
//! `libwcfs.a` and `libwcfs.so` into the directory of this test binary.
mod e2e_common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e_common::*;
use wcfs_core::wire::Tid;
use wcfs_testkit::require_fuse;
use wcfs_testkit::server::built_binary;

fn capi_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../backend-linux/capi")
}

/// Where cargo put `libwcfs.{a,so}`: next to this test binary (`deps/`).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .skip(1)
        .find(|d| d.join("libwcfs.a").is_file() && d.join("libwcfs.so").is_file())
        .unwrap_or_else(|| panic!("libwcfs.a/.so not built next to {}", exe.display()))
        .to_path_buf()
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wcfs-capi-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---- the header against the library ----

/// The function declarations of `wcfs.h`: name -> (return type, parameter types),
/// types without spaces (`constwcfs_file*`).
fn header_functions() -> BTreeMap<String, (String, Vec<String>)> {
    let h = std::fs::read_to_string(capi_dir().join("include/wcfs.h")).expect("wcfs.h");
    // Drop comments and preprocessor lines.
    let mut text = String::new();
    let mut rest = h.as_str();
    while let Some(i) = rest.find("/*") {
        text.push_str(&rest[..i]);
        let j = rest[i..].find("*/").expect("unterminated comment");
        rest = &rest[i + j + 2..];
    }
    text.push_str(rest);
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.contains("extern \"C\""))
        .collect::<Vec<_>>()
        .join(" ");
    let mut fns = BTreeMap::new();
    for decl in text.split(';') {
        let decl = decl.rsplit(['{', '}']).next().unwrap_or("").trim();
        if decl.contains("(*") {
            continue; // a callback field of a struct (`wcfs_vm_ops`)
        }
        let Some(open) = decl.find('(') else { continue };
        let close = decl.rfind(')').expect("unbalanced declaration");
        let (ret_name, params) = (&decl[..open], &decl[open + 1..close]);
        let name_at = ret_name
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let (ret, name) = (ret_name[..name_at].to_string(), &ret_name[name_at..]);
        let params: Vec<String> = params
            .split(',')
            .map(str::trim)
            .filter(|p| *p != "void" && !p.is_empty())
            .map(|p| {
                // Drop the parameter's name: the last identifier.
                let cut = p
                    .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map_or(0, |i| i + 1);
                p[..cut].to_string()
            })
            .collect();
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        let old = fns.insert(
            name.to_string(),
            (squash(&ret), params.iter().map(|p| squash(p)).collect()),
        );
        assert!(old.is_none(), "{name} declared twice");
    }
    fns
}

/// The C spelling of a Rust FFI type of `lib.rs`, without spaces.
fn c_type(rust: &str) -> String {
    let rust = rust.trim();
    if let Some(t) = rust.strip_prefix("*const ") {
        return format!("const{}*", c_type(t));
    }
    if let Some(t) = rust.strip_prefix("*mut ") {
        return format!("{}*", c_type(t));
    }
    match rust {
        "" => "void".into(),
        "c_char" => "char".into(),
        "c_int" => "int".into(),
        "c_void" => "void".into(),
        "u64" => "uint64_t".into(),
        "u32" => "uint32_t".into(),
        "f64" => "double".into(),
        "usize" => "size_t".into(),
        "bool" => "bool".into(),
        t if t.starts_with("wcfs_") => t.into(),
        t => panic!("no C spelling for Rust type {t:?}: a Rust type across the boundary?"),
    }
}

/// The Rust sources of the C ABI (`src/*.rs`, its tests left out), one after
/// the other in name order.
fn capi_sources() -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(capi_dir().join("src"))
        .expect("capi/src")
        .map(|e| e.expect("capi/src entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs") && !p.ends_with("tests.rs"))
        .collect();
    files.sort();
    assert!(files.len() > 1, "{files:?}");
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("a source of the C ABI"))
        .collect()
}

/// The exported functions of the C ABI's sources, in C spelling like `header_functions`.
fn rust_functions() -> BTreeMap<String, (String, Vec<String>)> {
    let src = capi_sources();
    let mut fns = BTreeMap::new();
    for (i, _) in src.match_indices("extern \"C\" fn ") {
        let rest = &src[i + "extern \"C\" fn ".len()..];
        let open = rest.find('(').expect("(");
        let name = rest[..open].trim();
        let body = rest.find('{').expect("{");
        let sig = &rest[open + 1..body];
        let close = sig.rfind(')').expect(")");
        let params = sig[..close]
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| c_type(p.split_once(':').expect("name: type").1))
            .collect();
        let ret = c_type(sig[close + 1..].trim().trim_start_matches("->"));
        fns.insert(name.to_string(), (ret, params));
    }
    fns
}

#[test]
fn header_declares_exactly_what_the_library_exports() {
    let header: Vec<String> = header_functions().into_keys().collect();
    let so = lib_dir().join("libwcfs.so");
    let nm = run(Command::new("nm").args(["-D", "--defined-only"]).arg(&so));
    let mut exported: Vec<String> = nm
        .lines()
        .filter_map(|l| l.split_whitespace().collect::<Vec<_>>().get(2).copied())
        .filter(|s| s.starts_with("wcfs_"))
        .map(String::from)
        .collect();
    exported.sort();
    assert!(
        header.len() >= 30,
        "too few declarations parsed: {header:?}"
    );
    assert_eq!(header, exported, "wcfs.h against nm -D {}", so.display());
}

#[test]
fn header_signatures_match_the_rust_source() {
    let (header, rust) = (header_functions(), rust_functions());
    assert_eq!(
        header.keys().collect::<Vec<_>>(),
        rust.keys().collect::<Vec<_>>()
    );
    for (name, sig) in &header {
        assert_eq!(sig, &rust[name], "{name}: wcfs.h against lib.rs");
    }
}

#[test]
fn the_signature_parsers_see_types() {
    // A parser that dropped the types would make the test above pass vacuously.
    let h = header_functions();
    assert_eq!(
        h["wcfs_file_mmap"],
        (
            "wcfs_result".into(),
            vec![
                "constwcfs_file*".into(),
                "uint64_t".into(),
                "uint64_t".into(),
                "wcfs_mapping**".into()
            ]
        )
    );
    assert_eq!(
        h["wcfs_last_error"],
        ("size_t".into(), vec!["char*".into(), "size_t".into()])
    );
    assert_eq!(rust_functions()["wcfs_file_mmap"], h["wcfs_file_mmap"]);
}

/// The text between `{` and `}` after `start` in `src`, comments dropped.
/// The C header `wcfs.h` and the Rust sources of the C ABI.
fn header_and_lib() -> (String, String) {
    let h = std::fs::read_to_string(capi_dir().join("include/wcfs.h")).expect("wcfs.h");
    (h, capi_sources())
}

/// A Rust struct field line `pub name: Type,` as `(name, Type)`.
fn rust_field(l: &str) -> (&str, &str) {
    l.trim_start_matches("pub ")
        .trim_end_matches(',')
        .split_once(": ")
        .expect("field")
}

fn block<'a>(src: &'a str, start: &str) -> Vec<&'a str> {
    let at = src
        .find(start)
        .unwrap_or_else(|| panic!("{start} not found"));
    let body = &src[at..];
    let (open, close) = (body.find('{').expect("{"), body.find('}').expect("}"));
    body[open + 1..close]
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("/*") && !l.starts_with("*") && !l.starts_with("//")
        })
        .collect()
}

#[test]
fn header_result_codes_match_the_rust_enum_and_their_names() {
    let (h, rs) = header_and_lib();
    let codes = |lines: Vec<&str>| -> Vec<(String, i32)> {
        lines
            .iter()
            .filter_map(|l| l.trim_end_matches(',').split_once(" = "))
            .map(|(n, v)| (n.to_string(), v.parse().expect("code value")))
            .collect()
    };
    let (hc, rc) = (
        codes(block(&h, "typedef enum wcfs_result")),
        codes(block(&rs, "pub enum wcfs_result")),
    );
    assert!(hc.len() >= 17, "{hc:?}");
    assert_eq!(hc, rc, "wcfs_result: wcfs.h against lib.rs");
    for (name, v) in &hc {
        // SAFETY: wcfs_result_name returns a static NUL-terminated string.
        let got = unsafe { std::ffi::CStr::from_ptr(wcfs::wcfs_result_name(*v)) };
        assert_eq!(got.to_str(), Ok(name.as_str()));
    }
    // SAFETY: as above.
    let unknown = unsafe { std::ffi::CStr::from_ptr(wcfs::wcfs_result_name(999)) };
    assert_eq!(unknown.to_str(), Ok("WCFS_UNKNOWN"));
}

#[test]
fn header_stats_struct_matches_the_rust_struct() {
    let (h, rs) = header_and_lib();
    let hf: Vec<String> = block(&h, "typedef struct wcfs_stats")
        .iter()
        .map(|l| {
            let (ty, name) = l.trim_end_matches(';').split_once(' ').expect("field");
            format!("{name}: {ty}")
        })
        .collect();
    let rf: Vec<String> = block(&rs, "pub struct wcfs_stats")
        .iter()
        .map(|l| {
            let (name, ty) = rust_field(l);
            match ty {
                "u64" => format!("{name}: uint64_t"),
                "[u64; WCFS_PIN_TIME_BUCKETS]" => {
                    format!("{name}[WCFS_PIN_TIME_BUCKETS]: uint64_t")
                }
                t => panic!("field type {t}"),
            }
        })
        .collect();
    assert_eq!(hf.len(), 10, "{hf:?}");
    assert_eq!(hf, rf, "wcfs_stats: wcfs.h against lib.rs");
    assert!(
        h.contains(&format!(
            "#define WCFS_PIN_TIME_BUCKETS {}\n",
            wcfs_linux::PIN_TIME_BUCKETS
        )),
        "WCFS_PIN_TIME_BUCKETS"
    );
    assert_eq!(
        std::mem::size_of::<wcfs::wcfs_stats>(),
        8 * (9 + wcfs_linux::PIN_TIME_BUCKETS)
    );
}

#[test]
fn header_join_options_struct_matches_the_rust_struct() {
    let (h, rs) = header_and_lib();
    let hf: Vec<String> = block(&h, "typedef struct wcfs_join_options")
        .iter()
        .map(|l| {
            let l = l.trim_end_matches(';');
            let cut = l
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            let ty: String = l[..cut].split_whitespace().collect();
            format!("{}: {ty}", &l[cut..])
        })
        .collect();
    let rf: Vec<String> = block(&rs, "pub struct wcfs_join_options")
        .iter()
        .map(|l| {
            let (name, ty) = rust_field(l);
            let c = match ty {
                "c_int" => "int",
                "*const c_char" => "constchar*",
                "*const *const c_char" => "constchar*const*",
                "usize" => "size_t",
                "u32" => "uint32_t",
                t => panic!("field type {t}"),
            };
            format!("{name}: {c}")
        })
        .collect();
    assert_eq!(hf.len(), 6, "{hf:?}");
    assert_eq!(hf, rf, "wcfs_join_options: wcfs.h against lib.rs");
    for (name, v) in [
        ("WCFS_AUTOSTART_FROM_ENV", wcfs::WCFS_AUTOSTART_FROM_ENV),
        ("WCFS_AUTOSTART_YES", wcfs::WCFS_AUTOSTART_YES),
        ("WCFS_AUTOSTART_NO", wcfs::WCFS_AUTOSTART_NO),
    ] {
        assert!(h.contains(&format!("#define {name} {v}\n")), "{name}");
    }
}

// ---- building C programs ----

#[derive(Clone, Copy, Debug)]
enum Link {
    Static,
    Shared,
}

/// The system C compiler (`$CC`, else `cc`).
fn cc() -> Command {
    Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
}

/// `wcfs.pc` from `wcfs.pc.in` for the library as built here; its directory.
fn pc_dir(out: &Path) -> PathBuf {
    let tpl = std::fs::read_to_string(capi_dir().join("wcfs.pc.in")).expect("wcfs.pc.in");
    let pc = tpl
        .replace("@LIBDIR@", &lib_dir().display().to_string())
        .replace(
            "@INCLUDEDIR@",
            &capi_dir().join("include").display().to_string(),
        )
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    std::fs::write(out.join("wcfs.pc"), pc).expect("write wcfs.pc");
    out.to_path_buf()
}

/// `pkg-config <args> wcfs` on our `wcfs.pc`. Without pkg-config on the
/// machine, the same flags read from the file directly (for the `args`
/// used here only).
fn pkg_config(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("pkg-config");
    cmd.env("PKG_CONFIG_PATH", dir).args(args).arg("wcfs");
    match cmd.output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("pkg-config not installed: reading wcfs.pc directly");
            pc_fields(&dir.join("wcfs.pc"), args)
        }
        _ => run(&mut cmd).split_whitespace().map(String::from).collect(),
    }
}

/// The flags `pkg-config <args>` would give for our `.pc` file.
fn pc_fields(pc: &Path, args: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(pc).expect("wcfs.pc");
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut fields = BTreeMap::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let mut v = l.to_string();
        for (k, x) in &vars {
            v = v.replace(&format!("${{{k}}}"), x);
        }
        if let Some((k, x)) = v.split_once('=').filter(|(k, _)| !k.contains(':')) {
            vars.push((k.trim().into(), x.trim().into()));
        } else if let Some((k, x)) = v.split_once(':') {
            fields.insert(k.trim().to_string(), x.trim().to_string());
        }
    }
    let words = |k: &str| -> Vec<String> {
        fields
            .get(k)
            .map(|v| v.split_whitespace().map(String::from).collect())
            .unwrap_or_default()
    };
    match args {
        ["--cflags"] => words("Cflags"),
        ["--libs"] => words("Libs"),
        ["--static", "--libs-only-l"] => words("Libs")
            .into_iter()
            .chain(words("Libs.private"))
            .filter(|w| w.starts_with("-l"))
            .collect(),
        _ => panic!("pc_fields: {args:?}"),
    }
}

#[test]
fn pc_file_reads_like_pkg_config() {
    let out = out_dir("pc");
    let pc = pc_dir(&out);
    let inc = format!("-I{}", capi_dir().join("include").display());
    assert_eq!(pc_fields(&pc.join("wcfs.pc"), &["--cflags"]), [inc]);
    let libs = pc_fields(&pc.join("wcfs.pc"), &["--static", "--libs-only-l"]);
    assert_eq!(libs[0], "-lwcfs");
    assert!(libs.contains(&"-lpthread".to_string()), "{libs:?}");
    // Where pkg-config is installed, it agrees.
    if Command::new("pkg-config").arg("--version").output().is_ok() {
        for args in [
            &["--cflags"][..],
            &["--libs"],
            &["--static", "--libs-only-l"],
        ] {
            let got = run(Command::new("pkg-config")
                .env("PKG_CONFIG_PATH", &pc)
                .args(args)
                .arg("wcfs"));
            let got: Vec<String> = got.split_whitespace().map(String::from).collect();
            assert_eq!(got, pc_fields(&pc.join("wcfs.pc"), args), "{args:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn header_compiles_alone_as_c99_and_cpp() {
    let out = out_dir("hdr");
    let src = out.join("h.c");
    std::fs::write(
        &src,
        "#include \"wcfs.h\"\nint main(void) { wcfs_stats s; (void)s; \
         return wcfs_last_error(0, 0) == 0 ? WCFS_OK : WCFS_ERR_IO; }\n",
    )
    .expect("write");
    let inc = capi_dir().join("include");
    // The header alone, warnings as errors, in the language `lang` picks.
    let syntax_check = |cc: &str, lang: &[&str]| {
        run(Command::new(cc)
            .args(lang)
            .args(["-Wall", "-Wextra", "-Werror", "-fsyntax-only"])
            .arg("-I")
            .arg(&inc)
            .arg(&src))
    };
    syntax_check("cc", &["-std=c99", "-pedantic"]);
    match Command::new("c++").arg("--version").output() {
        Ok(_) => {
            syntax_check("c++", &["-x", "c++", "-std=c++11"]);
        }
        Err(_) => eprintln!("no c++ compiler: the header's C++ guards are not compiled"),
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Compiles `src` with `cc` against `wcfs.h` and the library, flags from `wcfs.pc`.
fn compile(src: &Path, link: Link) -> PathBuf {
    let name = src.file_stem().expect("name");
    let out = out_dir(&format!("{link:?}-{}", name.to_string_lossy()));
    let pc = pc_dir(&out);
    let exe = out.join(name);
    let mut cc = cc();
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1"])
        .args(pkg_config(&pc, &["--cflags"]))
        .arg(src)
        .arg("-o")
        .arg(&exe);
    match link {
        Link::Static => {
            cc.arg(lib_dir().join("libwcfs.a")).args(
                pkg_config(&pc, &["--static", "--libs-only-l"])
                    .into_iter()
                    .filter(|l| l != "-lwcfs"),
            );
        }
        Link::Shared => {
            cc.args(pkg_config(&pc, &["--libs"]))
                .arg(format!("-Wl,-rpath,{}", lib_dir().display()));
        }
    }
    run(&mut cc);
    // Linked the way we asked: the shared build loads the libwcfs.so built
    // for this test (not one of another build found on a library path),
    // the static one none.
    let ldd = run(Command::new("ldd").env_remove("LD_LIBRARY_PATH").arg(&exe));
    let so = ldd.lines().find(|l| l.contains("libwcfs.so"));
    match link {
        Link::Static => assert_eq!(so, None, "{ldd}"),
        Link::Shared => {
            let want = lib_dir().join("libwcfs.so");
            assert!(
                so.is_some_and(|l| l.contains(&format!("=> {} ", want.display()))),
                "{ldd}"
            );
        }
    }
    exe
}

// ---- the reference scenario in C ----

/// The test server binary cargo built next to this test binary.
fn testserver_bin() -> PathBuf {
    built_binary("wcfs-testserver").unwrap()
}

/// A test server at a mountpoint of our choosing (where `join` looks),
/// driven over its stdin (`serve` in tests/src/server.rs).
struct Driven {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Driven {
    fn start(mnt: &Path, zurl: &str) -> Driven {
        std::fs::create_dir_all(mnt).expect("mountpoint");
        let mut child = Command::new(testserver_bin())
            .arg(mnt)
            .args(["--blksize", &bs().to_string()])
            .args(["--pintimeout", "10"])
            .args(["--zurl", zurl])
            .args(["--history", &(u64::MAX / 2).to_string()])
            .arg("--rmdir")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the test server");
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut ready = String::new();
        stdout.read_line(&mut ready).expect("ready line");
        assert!(ready.starts_with("ready "), "test server: {ready:?}");
        Driven {
            child,
            stdin,
            stdout,
        }
    }

    fn call(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").expect("to the test server");
        let mut l = String::new();
        self.stdout.read_line(&mut l).expect("from the test server");
        l.trim_end().to_string()
    }

    fn commit(&mut self, changes: &[(wcfs_core::wire::Oid, u64, Vec<u8>)]) -> Tid {
        let mut cmd = String::from("commitx");
        for (oid, blk, data) in changes {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            let hex = if hex.is_empty() { "00".into() } else { hex };
            cmd.push_str(&format!(" {oid} {blk} {hex}"));
        }
        let got = self.call(&cmd);
        let tid = got
            .strip_prefix("ok ")
            .unwrap_or_else(|| panic!("commit: {got}"));
        Tid::parse(tid).expect("tid")
    }

    fn failures(&mut self) -> String {
        self.call("failures")
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }
}

/// Whether something is mounted at `mnt` (`/proc/self/mountinfo`).
fn mounted(mnt: &Path) -> bool {
    wcfs_linux::MountEntry::lookup(mnt)
        .expect("mountinfo")
        .is_some()
}

fn reference_scenario(link: Link) {
    require_fuse!();
    let exe = compile(&capi_dir().join("tests/reference_scenario.c"), link);
    let base = out_dir(&format!("{link:?}-join"))
        .canonicalize()
        .expect("base");
    let zurl = "zeo://capi.example:8100";
    let other = "zeo://capi-other.example:8100";
    let mnt = wcfs_linux::mountpoint_under(&base, zurl).expect("mountpoint");
    let other_mnt = wcfs_linux::mountpoint_under(&base, other).expect("mountpoint");
    let mut srv = Driven::start(&mnt, zurl);
    srv.commit(&[change(F, 0, ""), change(F, 1, "")]);
    let at1 = srv.commit(&[change(F, 2, "c1"), change(F, 3, "d1")]);
    let at2 = srv.commit(&[change(F, 2, "c2")]);
    let srv = std::sync::Mutex::new(srv);

    // Without cargo's LD_LIBRARY_PATH (it lists target/<profile>, where a
    // libwcfs.so of an earlier `cargo build` may lie): the rpath decides.
    let mut child = Command::new(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("WCFS_SERVER")
        .env_remove("WENDELIN_CORE_WCFS_AUTOSTART")
        .env_remove("WENDELIN_CORE_WCFS_OPTIONS")
        .arg(&mnt)
        .arg(&base)
        .args([zurl, other, &at1.to_string(), &at2.to_string()])
        .arg(testserver_bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the C program");
    // A C program stuck on a fault must not hang the suite.
    let pid = child.id() as libc::pid_t;
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(Duration::from_secs(120)).is_err() {
            // SAFETY: our own child, not yet reaped (we reap after this thread ends).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut stdin = child.stdin.take().expect("piped");
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.expect("C program output");
        if let Some(changes) = line.strip_prefix("commit ") {
            let w: Vec<&str> = changes.split(' ').collect();
            let ch: Vec<_> = w
                .chunks(2)
                .map(|c| change(F, c[0].parse().expect("blk"), c[1]))
                .collect();
            let at: Tid = srv.lock().unwrap().commit(&ch);
            writeln!(stdin, "{at}").expect("answer the C program");
        }
        lines.push(line);
    }
    let status = child.wait().expect("wait");
    let _ = done_tx.send(());
    watchdog.join().expect("watchdog");
    let _ = std::fs::remove_dir_all(exe.parent().expect("out dir"));
    let out = lines.join("\n");
    // The server the C program autostarted ends by itself (-autoexit),
    // unmounting: nothing is left mounted for `other`.
    let t0 = std::time::Instant::now();
    while mounted(&other_mnt) && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let leaked = mounted(&other_mnt);
    let failures = srv.lock().unwrap().failures();
    drop(srv);
    if !leaked {
        let _ = std::fs::remove_dir_all(&base);
    }
    assert!(status.success(), "{link:?}: {status}\n{out}");
    assert!(
        !leaked,
        "{link:?}: the autostarted server is still mounted at {other_mnt:?}"
    );
    assert!(
        !mounted(&mnt),
        "{link:?}: the test server left {mnt:?} mounted"
    );
    let steps: Vec<&String> = lines.iter().filter(|l| l.starts_with("step ")).collect();
    assert_eq!(steps.len(), 8, "{out}");
    assert_eq!(
        lines.iter().filter(|l| *l == "commit 3 d3 4 e3").count(),
        1,
        "{out}"
    );
    assert_eq!(lines.last().map(String::as_str), Some("PASS"), "{out}");
    // The statistics the C program read (checked there), for the log.
    let stats = lines
        .iter()
        .find(|l| l.starts_with("stats "))
        .expect("stats line");
    eprintln!("{link:?}: {stats}");
    assert_eq!(failures, "ok 0", "{link:?}: clients that failed the server");
}

#[test]
fn c_reference_scenario_static() {
    reference_scenario(Link::Static);
}

#[test]
fn c_reference_scenario_shared() {
    reference_scenario(Link::Shared);
}

// ---- handles that let go of the mount ----

/// A C program closes its file and connection (freeing no handle), then
/// unmounts without MNT_DETACH (root only: `umount2`), which succeeds only
/// if it holds nothing inside the mount.
#[test]
fn c_closed_handles_let_go_of_the_mount() {
    require_fuse!();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: umount2 needs root");
        return;
    }
    let exe = compile(&capi_dir().join("tests/let_go.c"), Link::Static);
    let srv = server();
    let at = srv.commit(&[change(F, 0, "a0"), change(F, 1, "b1")]);
    let out = Command::new(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .arg(srv.mountpoint())
        .arg(at.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run the C program");
    let _ = std::fs::remove_dir_all(exe.parent().expect("out dir"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim_end(), "unmounted a0", "{:?}", out.status);
    assert_eq!(out.status.code(), Some(0));
    assert!(!mounted(srv.mountpoint()));
}

// ---- exit with a connection open ----

fn exit_with_conn_open(link: Link) {
    require_fuse!();
    let exe = compile(&capi_dir().join("tests/exit_with_conn_open.c"), link);
    let srv = server();
    let at1 = srv.commit(&[change(F, 0, "a1"), change(F, 1, "b1")]);
    srv.commit(&[change(F, 0, "a2")]);
    let mut child = Command::new(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .arg(srv.mountpoint())
        .arg(at1.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the C program");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut ready)
        .expect("C program output");
    assert_eq!(ready.trim_end(), "ready a1", "{link:?}");
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        // Stuck in the kernel, the child ends when the server unmounts (drop).
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{link:?}: exit() with a connection open did not end the process"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = std::fs::remove_dir_all(exe.parent().expect("out dir"));
    assert_eq!(status.code(), Some(3), "{link:?}: {status}");
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}

#[test]
fn c_exit_with_a_connection_open_static() {
    exit_with_conn_open(Link::Static);
}

#[test]
fn c_exit_with_a_connection_open_shared() {
    exit_with_conn_open(Link::Shared);
}

// ---- a small VM in C over wcfs_file_mmap_vm ----

/// Runs `vm_on_real_memory.c` (`mode` "ok" or "fail") while this process
/// commits to the file and reads its head all along; its output.
fn vm_on_real_memory(link: Link, mode: &str) -> String {
    let exe = compile(&capi_dir().join("tests/vm_on_real_memory.c"), link);
    let srv = server();
    let nblk = 12u64;
    let all: Vec<_> = (0..nblk - 2)
        .map(|b| change(F, b, &format!("b{b}")))
        .collect();
    srv.commit(&all);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (status, out) = std::thread::scope(|s| {
        let committer = s.spawn(|| {
            let head = srv.mountpoint().join(format!("head/bigfile/{F}"));
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Blocks 0..=nblk-2: once in a while the file grows by one.
                let blk = n * 7 % (nblk - 1);
                srv.commit(&[change(F, blk, &format!("c{n}"))]);
                let _ = std::fs::read(&head).expect("read head");
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            n
        });
        let mut child = Command::new(&exe)
            .env_remove("LD_LIBRARY_PATH")
            .arg(srv.mountpoint())
            .args([&F.to_string(), &nblk.to_string(), mode, "6"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("run the C program");
        let pid = child.id() as libc::pid_t;
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        s.spawn(move || {
            if done_rx.recv_timeout(Duration::from_secs(120)).is_err() {
                // SAFETY: our own child, reaped only after this thread ends.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        let lines: Vec<String> = BufReader::new(child.stdout.take().expect("piped"))
            .lines()
            .map(|l| l.expect("C program output"))
            .collect();
        let status = child.wait().expect("wait");
        let _ = done_tx.send(());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let commits = committer.join().expect("committer");
        eprintln!("{link:?} {mode}: {commits} commits meanwhile");
        (status, lines.join("\n"))
    });
    let _ = std::fs::remove_dir_all(exe.parent().expect("out dir"));
    assert!(status.success(), "{link:?} {mode}: {status}\n{out}");
    assert!(out.ends_with("PASS"), "{out}");
    let failures = srv.failures();
    match mode {
        "ok" => assert!(failures.is_empty(), "{failures:?}"),
        _ => assert!(
            failures.iter().any(|(_, why)| why.contains("VmDirty")),
            "the server saw the failed pin's nak: {failures:?}"
        ),
    }
    out
}

#[test]
fn c_vm_keeps_written_bytes_and_the_rest_as_of_at() {
    require_fuse!();
    let out = vm_on_real_memory(Link::Static, "ok");
    let stats = out
        .lines()
        .find(|l| l.starts_with("stats "))
        .expect("stats");
    eprintln!("{stats}");
    let field = |k: &str| -> u64 {
        let w: Vec<&str> = stats.split(' ').collect();
        let i = w.iter().position(|x| *x == k).expect(k);
        w[i + 1].parse().expect("number")
    };
    assert!(
        field("pins") > 0,
        "no pin arrived while the VM wrote: {stats}"
    );
    assert!(field("discards") > 0 && field("faults") > 0, "{stats}");
}

#[test]
fn c_vm_failing_hook_fails_the_pin_cleanly() {
    require_fuse!();
    let out = vm_on_real_memory(Link::Shared, "fail");
    assert!(out.contains("down: "), "{out}");
}
