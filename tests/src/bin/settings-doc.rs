//! Writes the settings tables of `docs/configuration.md` from `shared/src/settings.rs` (and the
//! template parameters of `template.yaml`); `scripts/settings-doc` runs it. With `--check` it
//! only says whether the page is up to date (exit status 1 if not).

use auth_tests::settings_doc::{configuration_page, render, with_generated_part};
use auth_tests::tables::template_path;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let check = std::env::args().any(|arg| arg == "--check");
    let path = configuration_page();
    let page = std::fs::read_to_string(&path)?;
    let updated = with_generated_part(&page, &render(&template_path())?)
        .ok_or("docs/configuration.md has no settings table markers")?;
    if updated == page {
        println!("{} is up to date", path.display());
    } else if check {
        eprintln!(
            "{} differs from shared/src/settings.rs: run scripts/settings-doc",
            path.display()
        );
        std::process::exit(1);
    } else {
        std::fs::write(&path, updated)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
