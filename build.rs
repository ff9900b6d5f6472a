//! Generates the C header with a pinned cbindgen (with the version macros), and sets the
//! shared library's SONAME and symbol versions (`abi/switchover.map`).
//!
//! The header is written to `$OUT_DIR/switchover.h` on every build. The committed copy in
//! `include/` is compared against it by the test `header_is_fresh` (and by meson), so a stale
//! header fails the build's tests. `SWO_UPDATE_HEADER=1 cargo build` refreshes the committed copy.
use std::{env, fs, path::Path, path::PathBuf};

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=SWO_UPDATE_HEADER");

    println!("cargo:rerun-if-changed=abi/switchover.map");

    // SONAME, so that packagers and the dynamic linker see libswitchover.so.<major>
    // (libswitchover.so.0 through the 0.x series, README §ABI): from Cargo.toml's version, as
    // meson.build and the Python binding derive it.
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libswitchover.so.{major}");
    // Symbol versions: every swo_* function under its node (SWITCHOVER_0.2, ...), as glibc and
    // libvirt do; README §ABI says when a node is added. rustc passes the linker its own
    // (anonymous) version script first, which wins for the names it lists, so the map alone
    // is not enough: each function also gets `.symver name, name@@NODE, remove` (see
    // `symver_asm`), and the map defines the nodes. Needs lld (rustc's default linker on
    // x86_64 Linux since Rust 1.90): GNU ld refuses an anonymous and a named script together.
    let map = crate_dir.join("abi").join("switchover.map");
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux {
        println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={}", map.display());
    }
    let nodes = map_nodes(&fs::read_to_string(&map).expect("abi/switchover.map is readable"));
    write_symver_asm(&crate_dir.join("src").join("ffi"), &out_dir.join("symver"), &nodes, linux);

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    let generated = out_dir.join("switchover.h");
    // The version, declared once in Cargo.toml, as macros a C program can test at build time
    // (`swo_version()` gives the library's at run time; a test checks they agree).
    let version_macros = format!(
        "\n/* This header's version (Cargo.toml); swo_version() gives the loaded library's. */\n\
         #define SWITCHOVER_VERSION_MAJOR {}\n\
         #define SWITCHOVER_VERSION_MINOR {}\n\
         #define SWITCHOVER_VERSION_PATCH {}\n",
        env::var("CARGO_PKG_VERSION_MAJOR").unwrap(),
        env::var("CARGO_PKG_VERSION_MINOR").unwrap(),
        env::var("CARGO_PKG_VERSION_PATCH").unwrap(),
    );
    cbindgen::Builder::new()
        // Only the FFI shell is the C API: parsing src/ffi alone keeps core items out.
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .with_config(config)
        .with_after_include(version_macros)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&generated);

    if env::var_os("SWO_UPDATE_HEADER").is_some_and(|v| v == "1") {
        let committed = crate_dir.join("include").join("switchover.h");
        let fresh = fs::read(&generated).unwrap();
        if fs::read(&committed).ok().as_deref() != Some(&fresh[..]) {
            fs::write(&committed, fresh).expect("include/switchover.h is writable");
        }
    }
}

/// The version nodes of a linker version script and their global names, in order.
fn map_nodes(map: &str) -> Vec<(String, Vec<String>)> {
    let mut text = String::new();
    let mut rest = map;
    while let Some(start) = rest.find("/*") {
        text.push_str(&rest[..start]);
        rest = rest[start..].split_once("*/").map_or("", |(_, after)| after);
    }
    text.push_str(rest);
    let mut nodes = Vec::new();
    let mut body = text.as_str();
    while let Some((head, after)) = body.split_once('{') {
        let node = head.split_whitespace().last().expect("a version node name before '{'");
        let (inside, after) = after.split_once('}').expect("a '}' closing each version node");
        let globals = inside.split("local:").next().unwrap().replace("global:", "");
        let names = globals.split(';').map(str::trim).filter(|n| !n.is_empty());
        nodes.push((node.to_owned(), names.map(str::to_owned).collect()));
        body = after.split_once(';').map_or("", |(_, rest)| rest); // past "} PARENT;"
    }
    nodes
}

/// Writes `$OUT_DIR/symver/<module>.rs` for every module of src/ffi: a `global_asm!` giving
/// each function of the version script that the module defines its default version,
/// `.symver swo_x, swo_x@@SWITCHOVER_0.2, remove`. The directive must sit in the object that
/// defines the function, hence one file per module, included by the module itself
/// (`symbol_versions!` in src/ffi/mod.rs). `remove` drops the plain name from the object, so
/// the static library and the Rust tests (which then see `swo_x@@…`, the default definition
/// of `swo_x`) link as before. A name of the map that no module defines stops the build.
fn write_symver_asm(ffi_dir: &Path, out: &Path, nodes: &[(String, Vec<String>)], linux: bool) {
    fs::create_dir_all(out).unwrap();
    let mut unplaced: Vec<(&str, &str)> = nodes
        .iter()
        .flat_map(|(node, names)| names.iter().map(move |n| (n.as_str(), node.as_str())))
        .collect();
    let mut modules: Vec<_> = fs::read_dir(ffi_dir).unwrap().map(|e| e.unwrap().path()).collect();
    modules.sort();
    for path in modules.iter().filter(|p| p.extension().is_some_and(|e| e == "rs")) {
        let source = fs::read_to_string(path).unwrap();
        let mut directives = Vec::new();
        unplaced.retain(|&(name, node)| {
            let defined = ["pub extern \"C\" fn ", "pub unsafe extern \"C\" fn "]
                .iter()
                .any(|def| source.contains(&format!("{def}{name}(")));
            if defined {
                directives.push(format!("\".symver {name}, {name}@@{node}, remove\""));
            }
            !defined
        });
        let text = if linux && !directives.is_empty() {
            format!(
                "// Generated by build.rs from abi/switchover.map.\nstd::arch::global_asm!(\n    {}\n);\n",
                directives.join(",\n    ")
            )
        } else {
            String::new()
        };
        let module = path.file_stem().unwrap().to_str().unwrap();
        fs::write(out.join(format!("{module}.rs")), text).unwrap();
    }
    assert!(
        unplaced.is_empty(),
        "abi/switchover.map lists functions no src/ffi module defines: {unplaced:?}"
    );
}
