//! Writes a freshly generated key pair to a directory, for the Python certificate checks:
//! `cargo run -p pbx365-graph --example write_keypair -- DIR [HOST]` creates `DIR/private_key.pem`
//! (mode 0600) and `DIR/public_key.pem`.

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: write_keypair DIR [HOST]")?);
    let host = args.next().unwrap_or_else(|| "pbx.example.com".into());
    std::fs::create_dir_all(&dir)?;
    let pair = pbx365_graph::keys::generate_pair(&host)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(dir.join("private_key.pem"))?
        .write_all(pair.private_key_pem.expose().as_bytes())?;
    std::fs::write(dir.join("public_key.pem"), &pair.certificate_pem)?;
    println!("{}", dir.display());
    Ok(())
}
