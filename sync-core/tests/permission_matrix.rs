//! `api-spec/permissions.md` shows the permission matrix computed from the
//! policy itself; this test fails when the two differ. Regenerate with
//! `UPDATE_API_SPEC=1 cargo test -p sync-core --test permission_matrix`.

const START: &str = "<!-- matrix:start -->\n";
const END: &str = "<!-- matrix:end -->";

#[test]
fn the_published_permission_matrix_is_the_policy() {
    let path = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../api-spec/permissions.md");
    let text = std::fs::read_to_string(&path).expect("api-spec/permissions.md");
    let (head, rest) = text.split_once(START).expect("matrix start marker");
    let (_, tail) = rest.split_once(END).expect("matrix end marker");
    let generated = sync_core::policy::matrix_markdown();
    let wanted = format!("{head}{START}{generated}{END}{tail}");
    if std::env::var_os("UPDATE_API_SPEC").is_some() {
        std::fs::write(&path, wanted).unwrap();
        return;
    }
    assert!(
        text == wanted,
        "api-spec/permissions.md is out of date; regenerate it with\n  UPDATE_API_SPEC=1 cargo test -p sync-core --test permission_matrix"
    );
}
