//! `api-spec/workflow.md` shows the state machine computed from the code;
//! this test fails when the two differ. Regenerate with
//! `UPDATE_API_SPEC=1 cargo test -p sync-core --test workflow_table`.

const START: &str = "<!-- workflow:start -->\n";
const END: &str = "<!-- workflow:end -->";

#[test]
fn the_published_state_machine_is_the_code() {
    let path = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../api-spec/workflow.md");
    let text = std::fs::read_to_string(&path).expect("api-spec/workflow.md");
    let (head, rest) = text.split_once(START).expect("start marker");
    let (_, tail) = rest.split_once(END).expect("end marker");
    let wanted = format!(
        "{head}{START}{}{END}{tail}",
        sync_core::workflow::transition_markdown()
    );
    if std::env::var_os("UPDATE_API_SPEC").is_some() {
        std::fs::write(&path, wanted).unwrap();
        return;
    }
    assert!(
        text == wanted,
        "api-spec/workflow.md is out of date; regenerate it with\n  UPDATE_API_SPEC=1 cargo test -p sync-core --test workflow_table"
    );
}
