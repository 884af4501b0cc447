//! Descriptors: the examples parse, versions, syntax errors, every problem at once, and
//! the extended descriptor (moved here from `descriptor/mod.rs`'s unit tests, to read files
//! with the load step registered).

use std::path::Path;
use std::time::Duration;

use stampede_job::{Job, ReporterSpec, Targets};

use super::registry;

fn parse(text: &str) -> Result<Job, String> {
    Job::parse(text, "job.yaml", Path::new("."), &registry()).map_err(|e| e.to_string())
}

#[test]
fn a_foundation_job_file_is_still_valid() {
    let job = parse(include_str!("../../../../examples/smoke.yaml")).unwrap();
    let steps: Vec<_> = job
        .tests
        .iter()
        .flat_map(|t| {
            t.steps
                .iter()
                .map(move |s| format!("{}/{}", t.name, s.label))
        })
        .collect();
    assert_eq!(steps, ["api/ramp", "api/mixed"]);
    assert_eq!(job.runs, 1);
    let Targets::List(targets) = &job.tests[0].targets else {
        panic!("one implicit target")
    };
    assert_eq!(targets[0].id, "local");
    assert_eq!(
        job.run_reporters,
        [
            ReporterSpec::TargetSuccess("=100%".into()),
            ReporterSpec::Thresholds
        ]
    );
}

#[test]
fn the_examples_are_valid() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for name in ["mixed.yaml", "contest-literal.json"] {
        let text = std::fs::read_to_string(examples.join(name)).unwrap();
        Job::parse(&text, name, &examples, &registry()).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn versions() {
    let body = "name: j\ntests: [{name: t, steps: [{name: s, echo: {text: x}}]}]\n";
    for ok in ["", "version: '1.0'\n", "version: 1.0\n"] {
        parse(&format!("{ok}{body}")).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let err = parse(&format!("version: '2.0'\n{body}")).unwrap_err();
    assert!(err.contains("version \"2.0\" is not supported"), "{err}");
    let err = parse(&format!("version: '1.1'\n{body}")).unwrap_err();
    assert!(err.contains("version \"1.1\" is not supported"), "{err}");
    let err = parse(&format!("version: 'one'\n{body}")).unwrap_err();
    assert!(err.contains("is not major.minor"), "{err}");
}

#[test]
fn yaml_syntax_errors_have_line_and_column() {
    let err = parse("name: j\ntests:\n  - name: t\n   steps: [\n").unwrap_err();
    assert!(err.contains("line") || err.contains(":4:"), "{err}");
}

#[test]
fn structural_and_rule_problems_come_together() {
    let err = parse(
        "name: j\ntests:\n  - name: t\n    steps:\n      - name: a\n        load: { url: 'http://x/', rate: 0, duration: 1s }\n      - name: b\n        sleep: { duration: 1s, extra: 1 }\n      - name: b\n        echo: { text: '{{ .Nope }}' }\n",
    )
    .unwrap_err();
    assert!(err.contains("4 problems"), "{err}");
    assert!(
        err.contains("tests[0].steps[0].load.rate: must be positive (line 6"),
        "{err}"
    );
    assert!(
        err.contains("tests[0].steps[1].sleep.extra: unknown field `extra`"),
        "{err}"
    );
    assert!(
        err.contains("tests[0].steps[2].name: step \"b\" is given twice"),
        "{err}"
    );
    assert!(
        err.contains("tests[0].steps[2].echo.text: unknown field .Nope"),
        "{err}"
    );
}

#[test]
fn the_extended_descriptor_rebuilds_the_same_job() {
    let job = parse(
        "name: j\nruns: 0\nrun_interval: 2s\ntags: [a]\ntests:\n  - name: t\n    targets: { synthetic: { count: 2 } }\n    retries: { count: 2, interval: 1s }\n    steps:\n      - name: s\n        exec: { command: echo, args: ['{{ target.id }}'] }\n",
    )
    .unwrap();
    let again = Job::from_extended(&job.extended.to_string(), &registry()).unwrap();
    assert_eq!(again.runs, 0);
    assert_eq!(again.run_interval, Duration::from_secs(2));
    assert_eq!(again.tests[0].retries, 2);
    assert_eq!(again.tests[0].steps[0].config, job.tests[0].steps[0].config);
}

#[test]
fn csv_paths_are_resolved_from_the_job_file_and_kept_resolved() {
    let job = Job::parse(
        "name: j\ntests:\n  - name: t\n    targets: { csv: { file: hosts.csv } }\n    steps: [{ name: s, echo: { text: x } }]\n",
        "dir/job.yaml",
        Path::new("/srv/jobs"),
        &registry(),
    )
    .unwrap();
    let Targets::Csv(csv) = &job.tests[0].targets else {
        panic!()
    };
    assert_eq!(csv.file, "/srv/jobs/hosts.csv");
    let again = Job::from_extended(&job.extended.to_string(), &registry()).unwrap();
    let Targets::Csv(csv) = &again.tests[0].targets else {
        panic!()
    };
    assert_eq!(csv.file, "/srv/jobs/hosts.csv");
}

#[test]
fn a_job_needs_what_its_steps_targets_and_reporters_declare() {
    use stampede_job::Capability;
    let job = parse(
        "name: j\ntests:\n  - name: t\n    targets: { csv: { file: hosts.csv } }\n    steps:\n      - { name: run, exec: { command: ls } }\n      - { name: skipped, disabled: true, load: { url: 'http://127.0.0.1:1/', rate: 1, duration: 1s } }\nreporting: { run_reporters: [{ junit: { path: j.xml } }] }\n",
    )
    .unwrap();
    assert_eq!(
        job.needs().into_iter().collect::<Vec<_>>(),
        [
            Capability::RunProcesses,
            Capability::ReadFiles,
            Capability::WriteFiles
        ],
        "a disabled step needs nothing"
    );
    let quiet =
        parse("name: j\ntests: [{name: t, steps: [{name: s, echo: {text: x}}]}]\n").unwrap();
    assert!(quiet.needs().is_empty());
}
