//! The web apps' files are embedded in the binary (`src/http/apps.rs`), and
//! the migrations too (`sqlx::migrate!`): rebuild when any of them changes,
//! which neither macro tells Cargo.

fn main() {
    println!("cargo:rerun-if-changed=../apps/field");
    println!("cargo:rerun-if-changed=../apps/console");
    println!("cargo:rerun-if-changed=migrations");
}
