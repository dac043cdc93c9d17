//! The documentation's recipes run as written. Every fenced block whose info string is
//! `sh recipe within=<duration> [exit=<code>]` in README.md and docs/*.md is run by bash from
//! the repository's root, with this build's `servicerefresh` and the CI tools (helm) first on
//! the PATH and nothing else prepared: each recipe starts its own simulated cluster. It must
//! end with the stated exit code (0 unless `exit=` says otherwise) within the stated time;
//! whatever it left running (a detached simulated cluster, an operator) is stopped with its
//! process group. Also: the README stays short, its links resolve, and no document cites a
//! file outside the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MARK: &str = "sh recipe";

#[derive(Debug)]
struct Recipe {
    file: String,
    line: usize,
    within: Duration,
    exit: i32,
    script: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn parse_duration(text: &str) -> Duration {
    let (number, unit) = text.split_at(text.len() - 1);
    let number: u64 = number.parse().unwrap_or_else(|_| panic!("a duration like 90s: {text}"));
    match unit {
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number * 60),
        _ => panic!("a duration in s or m: {text}"),
    }
}

fn recipes_in(path: &Path) -> Vec<Recipe> {
    let text = std::fs::read_to_string(path).expect("readable");
    let file = path.strip_prefix(root()).unwrap_or(path).display().to_string();
    let mut recipes = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```").filter(|info| info.starts_with(MARK)) else {
            continue;
        };
        let (mut within, mut exit) = (None, 0);
        for word in info[MARK.len()..].split_whitespace() {
            match word.split_once('=') {
                Some(("within", value)) => within = Some(parse_duration(value)),
                Some(("exit", value)) => exit = value.parse().expect("an exit code"),
                _ => panic!("{file}:{}: unknown recipe attribute {word:?}", number + 1),
            }
        }
        let script: Vec<&str> =
            lines.by_ref().map(|(_, line)| line).take_while(|line| *line != "```").collect();
        recipes.push(Recipe {
            file: file.clone(),
            line: number + 1,
            within: within
                .unwrap_or_else(|| panic!("{file}:{}: a recipe states its time", number + 1)),
            exit,
            script: script.join("\n"),
        });
    }
    recipes
}

fn all_recipes() -> Vec<Recipe> {
    documents().iter().flat_map(|path| recipes_in(path)).collect()
}

fn on_path(program: &str, path: &str) -> bool {
    std::env::split_paths(path).any(|dir| dir.join(program).is_file())
}

/// Stops whatever the recipe left running in its process group; the group may be gone.
fn stop_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

fn run(recipe: &Recipe, path: &str) -> Result<Duration, String> {
    let home = tempfile::tempdir().expect("a temporary home");
    let log_path = home.path().join("output.log");
    let log = std::fs::File::create(&log_path).expect("a log file");
    let started = Instant::now();
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new("bash")
            .arg("-c")
            .arg(&recipe.script)
            .current_dir(root())
            .env("PATH", path)
            .env("HOME", home.path())
            .env("KUBECACHEDIR", home.path().join("kube-cache"))
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("bash runs")
    };
    let pgid = child.id();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > recipe.within {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = started.elapsed();
    stop_group(pgid);
    let _ = child.wait();
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let place = format!("{}:{}", recipe.file, recipe.line);
    match status {
        None => Err(format!("{place}: not done within {:?}; output:\n{output}", recipe.within)),
        Some(status) if status.code() != Some(recipe.exit) => Err(format!(
            "{place}: exited {status}, expected {} (after {took:.1?}); output:\n{output}",
            recipe.exit
        )),
        Some(_) => {
            println!("{place}: done in {took:.1?}\n{output}");
            Ok(took)
        }
    }
}

#[test]
fn every_recipe_runs_as_written_within_its_time() {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_servicerefresh"));
    let mut dirs = vec![
        binary.parent().expect("the binary's directory").to_path_buf(),
        root().join(".ci/tools/bin"),
    ];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    let path = std::env::join_paths(dirs).expect("a PATH").into_string().expect("UTF-8");
    let recipes = all_recipes();
    assert!(recipes.len() >= 4, "the README's recipes are found: {recipes:#?}");
    let mut failures = Vec::new();
    for recipe in &recipes {
        let needs: Vec<&str> = ["kubectl", "helm"]
            .into_iter()
            .filter(|tool| recipe.script.contains(&format!("{tool} ")))
            .collect();
        if let Some(missing) = needs.iter().find(|tool| !on_path(tool, &path)) {
            println!("skipping {}:{}: {missing} is not installed", recipe.file, recipe.line);
            continue;
        }
        if let Err(failure) = run(recipe, &path) {
            failures.push(failure);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn recipes_are_found_with_their_stated_times() {
    let recipes = all_recipes();
    let readme: Vec<&Recipe> = recipes.iter().filter(|r| r.file == "README.md").collect();
    assert!(readme.len() >= 3, "{readme:#?}");
    for recipe in &recipes {
        assert!(recipe.within <= Duration::from_secs(120), "about a minute: {recipe:?}");
        assert!(!recipe.script.trim().is_empty(), "{recipe:?}");
    }
}

#[test]
fn the_readme_is_short_and_its_links_resolve() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 400, "README.md has {lines} lines; move reference material to docs/");
    for document in documents().iter().chain([&root().join("CONTRIBUTING.md")]) {
        let text = std::fs::read_to_string(document).expect("readable");
        let dir = document.parent().expect("a directory");
        for target in text.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let file = target.split('#').next().unwrap_or(target);
            assert!(dir.join(file).exists(), "{}: link to {target} resolves", document.display());
        }
    }
}

#[test]
fn no_document_cites_files_outside_the_repository() {
    let output = Command::new("git")
        .args(["ls-files", "*.md", "*.rs", "*.yaml", "*.txt", "*.tpl", "*.lua"])
        .current_dir(root())
        .output()
        .expect("git runs");
    let files = String::from_utf8(output.stdout).expect("UTF-8");
    let forbidden = [concat!("DESIGN", ".md"), concat!("../", "shared")];
    for file in files.lines() {
        let text = std::fs::read_to_string(root().join(file)).unwrap_or_default();
        for word in forbidden {
            assert!(!text.contains(word), "{file} cites {word}, which is not in the repository");
        }
    }
}

/// `helm show readme` prints the chart's README with each helm the CI installs.
#[test]
fn helm_show_readme_prints_the_charts_readme() {
    let chart = root().join("charts/servicerefresh");
    let expected = std::fs::read_to_string(chart.join("README.md")).expect("the chart's README");
    for helm in ["helm3", "helm4"] {
        let program = root().join(".ci/tools/bin").join(helm);
        if !program.is_file() {
            println!("skipping {helm}: not installed (.ci/install-tools installs it)");
            continue;
        }
        let home = tempfile::tempdir().expect("a temporary home");
        let output = Command::new(&program)
            .args(["show", "readme"])
            .arg(&chart)
            .env("HOME", home.path())
            .output()
            .expect("helm runs");
        assert!(output.status.success(), "{helm}: {}", String::from_utf8_lossy(&output.stderr));
        let shown = String::from_utf8_lossy(&output.stdout);
        assert_eq!(shown.trim(), expected.trim(), "{helm} shows the chart's README");
        for topic in ["watchNamespace", "RBAC", "health.lua", "Flux", "Upgrading"] {
            assert!(shown.contains(topic), "{helm}: the README covers {topic}");
        }
    }
}
