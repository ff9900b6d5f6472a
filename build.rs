//! Generates the C header with a pinned cbindgen, and sets the shared library's SONAME.
//!
//! The header is written to `$OUT_DIR/switchover.h` on every build. The committed copy in
//! `include/` is compared against it by the test `header_is_fresh` (and by meson), so a stale
//! header fails the build's tests. `SWO_UPDATE_HEADER=1 cargo build` refreshes the committed copy.
use std::{env, fs, path::PathBuf};

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=SWO_UPDATE_HEADER");

    // SONAME, so that packagers and the dynamic linker see libswitchover.so.0.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libswitchover.so.0");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    let generated = out_dir.join("switchover.h");
    cbindgen::Builder::new()
        // Only the FFI shell is the C API: parsing src/ffi alone keeps core items out.
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .with_config(config)
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
