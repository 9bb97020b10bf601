//! The build driver: builds the target artifacts (hypervisor ELF, RTOS ELF,
//! Linux kernel) into the cache, keyed by a fingerprint of their inputs, and
//! reuses them while the inputs are unchanged.

use crate::progress::Step;
use crate::target::fingerprint::fingerprint;
use crate::target::paths;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    All,
    Hypervisor,
    Rtos,
    Linux,
}

/// Build options that change the artifacts (and so are part of their keys).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// RTOS application (`paper` or `sync`); `None` = the RTOS's default.
    pub rtos_app: Option<String>,
    /// Build the RTOS with its ground-truth context-switch log.
    pub ground_truth: bool,
}

/// Artifact name → absolute path, as printed by `hv-trace build --json`.
pub type Artifacts = BTreeMap<String, PathBuf>;

/// Serialises builds into the shared cache between hv-trace processes (two
/// builds of one artifact would step on each other's files).
pub struct BuildLock(
    // Held for its lock, released when dropped.
    #[allow(dead_code)] fs::File,
);

impl BuildLock {
    pub fn acquire() -> Result<Self> {
        let dir = paths::cache_dir();
        fs::create_dir_all(&dir)?;
        let path = dir.join(".build-lock");
        let file = fs::File::create(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                eprintln!(
                    "waiting for another hv-trace process that is building or starting a system (it holds {})",
                    path.display()
                );
                file.lock().context("locking the build cache")?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(e).context("locking the build cache"),
        }
        Ok(BuildLock(file))
    }
}

pub fn build(target: Target, opts: &Options) -> Result<Artifacts> {
    let _lock = BuildLock::acquire()?;
    let mut out = Artifacts::new();
    if matches!(target, Target::All | Target::Hypervisor) {
        out.insert("hypervisor".into(), build_hypervisor()?);
    }
    if matches!(target, Target::All | Target::Rtos) {
        let (elf, bin) = build_rtos(opts)?;
        out.insert("rtos".into(), elf);
        out.insert("rtos-bin".into(), bin);
    }
    if matches!(target, Target::All | Target::Linux) {
        out.extend(build_linux()?);
    }
    Ok(out)
}

pub fn build_hypervisor() -> Result<PathBuf> {
    let root = paths::repo_root();
    let key = fingerprint(
        &root,
        &[
            "hypervisor/src",
            "hypervisor/Cargo.toml",
            "hypervisor/Cargo.lock",
            "hypervisor/link.ld",
            "hypervisor/.cargo",
            "guest-probe/src",
            "guest-probe/Cargo.toml",
            "hyp-core/src",
            "hyp-core/Cargo.toml",
        ],
        &[&tool_version("/usr/bin/rustc")?],
    )?;
    let dir = paths::cache_dir().join("hypervisor").join(&key);
    let elf = dir.join("hypervisor.elf");
    if elf.is_file() {
        return Ok(elf);
    }
    let target_dir = paths::cache_dir().join("hypervisor").join("target");
    let step = Step::start("building the hypervisor");
    let mut cmd = Command::new("/usr/bin/cargo");
    cmd.args(["build", "--release"])
        .current_dir(root.join("hypervisor"))
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", &target_dir);
    run_logged(cmd, &step, &dir.join("build.log")).context(
        "the hypervisor did not build (Debian's rustc-web, rust-web-src and lld are needed: run scripts/setup.sh)",
    )?;
    fs::copy(
        target_dir.join("aarch64-unknown-none-softfloat/release/hypervisor"),
        &elf,
    )?;
    step.finish("done");
    Ok(elf)
}

pub fn build_rtos(opts: &Options) -> Result<(PathBuf, PathBuf)> {
    let root = paths::repo_root();
    let src = root.join("guests/ucos-ii");
    if !src.join("Makefile").is_file() {
        bail!("the RTOS guest is missing: {} has no Makefile", src.display());
    }
    let app = opts.rtos_app.clone().unwrap_or_else(|| "paper".into());
    let gt = if opts.ground_truth {
        "GROUND_TRUTH=1"
    } else {
        "GROUND_TRUTH=0"
    };
    let key = fingerprint(
        &root,
        &["guests/ucos-ii"],
        &[&app, gt, &tool_version("aarch64-linux-gnu-gcc")?],
    )?;
    let dir = paths::cache_dir().join("rtos").join(&key);
    let (elf, bin) = (dir.join("ucos-ii.elf"), dir.join("ucos-ii.bin"));
    if elf.is_file() && bin.is_file() {
        return Ok((elf, bin));
    }
    let step = Step::start(format!("building the RTOS (APP={app} {gt})"));
    let build = dir.join("build");
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(&src)
        .arg(format!("BUILD={}", build.display()))
        .arg(format!("APP={app}"))
        .arg(gt);
    run_logged(cmd, &step, &dir.join("build.log")).context("the RTOS did not build")?;
    fs::copy(build.join("ucos-ii.elf"), &elf)?;
    fs::copy(build.join("ucos-ii.bin"), &bin)?;
    step.finish("done");
    Ok((elf, bin))
}

pub fn build_linux() -> Result<Artifacts> {
    let root = paths::repo_root();
    let cache = paths::cache_dir();
    let ksrc = cache.join("linux-source-6.12");
    if !ksrc.join("Makefile").is_file() {
        bail!("kernel source missing at {}: run scripts/setup.sh", ksrc.display());
    }
    let bindgen = cache.join("tools/bin/bindgen");
    let key = fingerprint(
        &root,
        &["guests/linux/kernel.config", "guests/linux/build-kernel.sh"],
        &[
            &tool_version("aarch64-linux-gnu-gcc")?,
            &tool_version("/usr/bin/rustc")?,
            &fs::read_to_string(ksrc.join("Makefile")).unwrap_or_default(),
        ],
    )?;
    // One build tree, rebuilt incrementally; the stamp records its inputs.
    let out = cache.join("linux").join("build");
    let stamp = out.join(".hv-trace-inputs");
    let image = out.join("arch/arm64/boot/Image");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(key.as_str()) || !image.is_file() {
        let _ = fs::remove_file(&stamp);
        let step = Step::start("building the Linux kernel (about 10 minutes the first time)");
        let mut cmd = Command::new("bash");
        cmd.arg(root.join("guests/linux/build-kernel.sh"))
            .arg(&ksrc)
            .arg(&out)
            .arg(&bindgen);
        run_logged(cmd, &step, &cache.join("linux").join("build.log")).context("the Linux kernel did not build")?;
        fs::write(&stamp, &key)?;
        step.finish("done");
    }
    let mut a = Artifacts::new();
    let module = if root.join("linux-module/Kbuild").is_file() {
        Some(build_module(&out)?)
    } else {
        None
    };
    let bench = build_bench()?;
    let agents = build_agents()?;
    a.insert("initramfs".into(), build_rootfs(module.as_deref(), &bench, &agents)?);
    a.insert("bench".into(), bench);
    a.insert("agents".into(), agents);
    if let Some(m) = module {
        a.insert("hvtrace-module".into(), m);
    }
    a.insert("linux-image".into(), image);
    a.insert("vmlinux".into(), out.join("vmlinux"));
    a.insert("linux-kbuild".into(), out);
    Ok(a)
}

/// The hvtrace Rust-for-Linux module, built out of tree against the kernel
/// build in `kbuild`, in a copy of `linux-module/` (so the repository stays
/// clean) with the ABI header generated from guest-probe's single definition.
/// The sysfs control protocol's one definition, compiled into the module as
/// its `cmd` module.
const CONTROL_PROTOCOL: &str = "guest-probe/src/abi/control.rs";
/// The fetch arguments' one definition (plans, payloads), the module's `fetch`.
const FETCH_PROTOCOL: &str = "guest-probe/src/abi/fetch.rs";

fn build_module(kbuild: &Path) -> Result<PathBuf> {
    let root = paths::repo_root();
    let header = guest_probe::abi::c_header();
    let protocol = root.join(CONTROL_PROTOCOL);
    let kernel_key = fs::read_to_string(kbuild.join(".hv-trace-inputs")).unwrap_or_default();
    let key = fingerprint(
        &root,
        &["linux-module", CONTROL_PROTOCOL, FETCH_PROTOCOL],
        &[&header, &kernel_key],
    )?;
    let dir = paths::cache_dir().join("module").join(&key);
    let ko = dir.join("hvtrace.ko");
    if ko.is_file() {
        return Ok(ko);
    }
    let src = dir.join("src");
    let _ = fs::remove_dir_all(&src);
    copy_dir(&root.join("linux-module"), &src)?;
    fs::write(src.join("hvtrace_abi.h"), header)?;
    fs::copy(&protocol, src.join("cmd.rs")).with_context(|| format!("copying {}", protocol.display()))?;
    let fetch = root.join(FETCH_PROTOCOL);
    fs::copy(&fetch, src.join("fetch.rs")).with_context(|| format!("copying {}", fetch.display()))?;
    let step = Step::start("building the hvtrace kernel module");
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(kbuild)
        .arg(format!("M={}", src.display()))
        .args([
            "ARCH=arm64",
            "CROSS_COMPILE=aarch64-linux-gnu-",
            "RUSTC=/usr/bin/rustc",
            "HOSTRUSTC=/usr/bin/rustc",
        ])
        .arg(format!(
            "BINDGEN={}",
            paths::cache_dir().join("tools/bin/bindgen").display()
        ))
        .arg("modules");
    run_logged(cmd, &step, &dir.join("build.log")).context("the hvtrace module did not build")?;
    fs::copy(src.join("hvtrace.ko"), &ko)?;
    step.finish("done");
    Ok(ko)
}

/// The guest benchmark programs (`guests/linux/bench`, static AArch64):
/// the directory that holds them.
pub fn build_bench() -> Result<PathBuf> {
    build_guest_programs("guests/linux/bench", "bench", "the guest benchmarks", &[])
}

/// The guest's agents (`guests/linux/agent`, static AArch64, built against
/// the stream protocol's header generated from guest-probe): the directory
/// that holds them.
pub fn build_agents() -> Result<PathBuf> {
    build_guest_programs(
        "guests/linux/agent",
        "agents",
        "the guest agents",
        &[("hvtrace_stream.h", guest_probe::abi::stream::c_header())],
    )
}

/// Static AArch64 programs from `src` (a Makefile taking `OUT=` and `GEN=`,
/// the directory of the generated `headers`), cached under `cache`: the
/// directory that holds them.
fn build_guest_programs(src: &str, cache: &str, what: &str, headers: &[(&str, String)]) -> Result<PathBuf> {
    let root = paths::repo_root();
    let mut inputs = vec![tool_version("aarch64-linux-gnu-gcc")?];
    inputs.extend(headers.iter().map(|(_, text)| text.clone()));
    let key = fingerprint(&root, &[src], &inputs.iter().map(String::as_str).collect::<Vec<_>>())?;
    let dir = paths::cache_dir().join(cache).join(&key);
    let bin = dir.join("bin");
    if bin.join(".done").is_file() {
        return Ok(bin);
    }
    let step = Step::start(format!("building {what}"));
    let _ = fs::remove_dir_all(&bin);
    let gen = dir.join("include");
    fs::create_dir_all(&gen)?;
    for (name, text) in headers {
        fs::write(gen.join(name), text)?;
    }
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(root.join(src))
        .arg(format!("OUT={}", bin.display()))
        .arg(format!("GEN={}", gen.display()));
    run_logged(cmd, &step, &dir.join("build.log")).with_context(|| {
        format!("{what} did not build (static AArch64 needs libc6-dev-arm64-cross: run scripts/setup.sh)")
    })?;
    fs::write(bin.join(".done"), &key)?;
    step.finish("done");
    Ok(bin)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// The initramfs: busybox, the real trace-cmd and our init, from the arm64
/// packages `scripts/setup.sh` downloaded, with the module, the benchmarks
/// (`/usr/bench`) and the agents (`/usr/bin`).
pub fn build_rootfs(module: Option<&Path>, bench: &Path, agents: &Path) -> Result<PathBuf> {
    let root = paths::repo_root();
    let debs = paths::cache_dir().join("arm64-debs");
    let mut deb_names: Vec<String> = fs::read_dir(&debs)
        .with_context(|| format!("{} is missing: run scripts/setup.sh", debs.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    deb_names.sort();
    let key = fingerprint(
        &root,
        &["guests/linux/rootfs", "guests/linux/build-rootfs.sh"],
        &[
            &deb_names.join(","),
            &module.map(|m| m.display().to_string()).unwrap_or_default(),
            &bench.display().to_string(),
            &agents.display().to_string(),
        ],
    )?;
    let dir = paths::cache_dir().join("rootfs").join(&key);
    let cpio = dir.join("initramfs.cpio.gz");
    if cpio.is_file() {
        return Ok(cpio);
    }
    let step = Step::start("building the Linux initramfs");
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("guests/linux/build-rootfs.sh")).arg(&debs).arg(&cpio);
    cmd.arg(module.unwrap_or(Path::new(""))).arg(bench).arg(agents);
    run_logged(cmd, &step, &dir.join("build.log")).context("the initramfs did not build")?;
    step.finish("done");
    Ok(cpio)
}

/// Runs a build tool with its output in `log`, showing its latest line as
/// progress; on failure the error quotes the log's tail and names the log.
fn run_logged(mut cmd: Command, step: &Step, log: &Path) -> Result<()> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}: is it installed? (scripts/setup.sh installs it)"))?;
    let stderr = child.stderr.take().expect("piped");
    let err_thread =
        std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>());
    let mut tail = std::collections::VecDeque::new();
    for line in BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        step.detail(&line);
        writeln!(file, "{line}")?;
        tail.push_back(line);
        if tail.len() > 30 {
            tail.pop_front();
        }
    }
    let status = child.wait()?;
    let errs = err_thread.join().unwrap_or_default();
    for line in &errs {
        writeln!(file, "{line}")?;
    }
    if !status.success() {
        let mut shown: Vec<String> = tail.into_iter().collect();
        shown.extend(errs.iter().rev().take(30).rev().cloned());
        bail!(
            "{program} failed ({status}); last lines:\n{}\nfull log: {}",
            shown.join("\n"),
            log.display()
        );
    }
    Ok(())
}

fn tool_version(tool: &str) -> Result<String> {
    let out = Command::new(tool)
        .arg("--version")
        .output()
        .with_context(|| format!("{tool} is not installed: run scripts/setup.sh"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string())
}
