//! Regenerates `translator/src/table/generated.rs` from the rules in
//! `translator/src/table/rules.rs`: `cargo run -p translator --example gen_table`.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/table/generated.rs");
    std::fs::write(&path, translator::table::render::render())?;
    for (class, n) in translator::table::render::counts() {
        println!("{class:12} {n}");
    }
    println!("wrote {}", path.display());
    Ok(())
}
