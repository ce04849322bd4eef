//! The web apps' files are embedded in the binary (`src/http/apps.rs`): rebuild
//! when any of them changes, which the embedding macro does not tell Cargo.

fn main() {
    println!("cargo:rerun-if-changed=../apps/field");
    println!("cargo:rerun-if-changed=../apps/console");
}
