//! Embeds the player page's JavaScript dependency, hls.js, from npm.
//!
//! hls.js is a build-time dependency (`package.json`, `package-lock.json` at the
//! repository root): its `dist/hls.min.js` and its `LICENSE` are copied into `OUT_DIR`
//! and `src/page.rs` embeds them with `include_bytes!`/`include_str!`. Nothing is
//! copied into the repository and nothing is fetched at run time.
//!
//! When `node_modules/hls.js` is missing, this script runs `npm ci` in the repository
//! root if `npm` is installed, and otherwise fails with a message saying to run it.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env("OUT_DIR"));
    let package = root.join("node_modules").join("hls.js");
    let script = package.join("dist").join("hls.min.js");
    let license = package.join("LICENSE");
    let manifest = package.join("package.json");

    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=package.json");
    println!("cargo::rerun-if-changed=package-lock.json");
    for p in [&script, &license, &manifest] {
        println!("cargo::rerun-if-changed={}", p.display());
    }

    if !(script.is_file() && license.is_file() && manifest.is_file()) {
        install(&root);
    }
    if let Err(e) = embed(&script, &license, &manifest, &out) {
        fail(&format!(
            "cannot read hls.js from {}: {e}. Run `npm ci` in {}.",
            package.display(),
            root.display()
        ));
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("{name} is not set")))
}

/// Reports a build failure cargo shows as an error, then stops.
fn fail(message: &str) -> ! {
    println!("cargo::error={message}");
    std::process::exit(1);
}

/// `npm ci` in `root`, or a clear failure when npm is not installed.
fn install(root: &Path) {
    let npm_found = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !npm_found {
        fail(&format!(
            "hls.js (the player page's JavaScript) is missing from {}/node_modules and `npm` \
             is not installed. Install Node.js and npm (`bash scripts/setup.sh` does), then \
             run `npm ci` in {}.",
            root.display(),
            root.display()
        ));
    }
    println!("cargo::warning=node_modules/hls.js is missing: running `npm ci`");
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(root)
        // Progress and notices go to cargo's build log, not the terminal.
        .stdout(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!(
            "`npm ci` in {} failed ({s}); run it by hand to see why",
            root.display()
        )),
        Err(e) => fail(&format!("cannot run `npm ci` in {}: {e}", root.display())),
    }
}

/// Copies the script (without its source-map comment: the map is not served), the
/// licence and the version into `out`.
fn embed(script: &Path, license: &Path, manifest: &Path, out: &Path) -> std::io::Result<()> {
    let js = fs::read_to_string(script)?;
    let js = match js.rfind("//# sourceMappingURL=") {
        Some(at) if !js[at..].trim_end().contains('\n') => js[..at].trim_end().to_string(),
        _ => js,
    };
    fs::write(out.join("hls.min.js"), js)?;
    fs::copy(license, out.join("hls.js-LICENSE.txt"))?;
    let version = version_of(&fs::read_to_string(manifest)?).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no \"version\" in {}", manifest.display()),
        )
    })?;
    fs::write(out.join("hls.js-version.txt"), version)?;
    Ok(())
}

/// The top-level `"version": "x.y.z"` of a package.json (the first such key: npm writes
/// it before any nested object).
fn version_of(json: &str) -> Option<String> {
    let at = json.find("\"version\"")?;
    let rest = json[at + "\"version\"".len()..]
        .trim_start()
        .strip_prefix(':')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    let v = &rest[..end];
    v.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
        .then(|| v.to_string())
}
