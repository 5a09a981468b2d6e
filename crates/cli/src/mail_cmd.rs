//! `pbx365 mail test --to ADDR` (SPEC §10): checks the mail server settings, queues a test mail
//! and waits until it is sent or failed. The mail is sent by whichever instance holds the
//! cluster's `mail` lease: this process when no server runs, else the server.

use anyhow::{anyhow, bail};
use pbx365_app::App;
use pbx365_domain::settings::Settings;
use pbx365_domain::OutboxStatus;
use pbx365_store::Store;
use std::time::Duration;

/// How long `mail test` waits for the outcome before saying the mail is still queued.
const WAIT: Duration = Duration::from_secs(120);

/// Runs `pbx365 mail test --to ADDR`; the error (non-zero exit) is a sentence.
pub async fn test(settings: Settings, to: &str) -> anyhow::Result<()> {
    let store = Store::connect(&settings.effective_database_url())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let settings = pbx365_app::settings::load(&store, &settings)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let app = App::new(store, settings);
    let queued = app
        .send_test_mail(None, to)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let worker = app.start_mail_worker();
    let mail = app
        .wait_for_mail(&queued.mail.id, WAIT)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    worker.stop();
    match mail.status {
        OutboxStatus::Sent => {
            println!("test mail sent to {to} (outbox id {})", mail.id);
            Ok(())
        }
        OutboxStatus::Failed => bail!(
            "the test mail to {to} failed: {}",
            mail.last_error.unwrap_or_default()
        ),
        _ => {
            println!(
                "test mail to {to} is still queued (outbox id {}){}",
                mail.id,
                mail.last_error
                    .map(|e| format!("; last attempt: {e}"))
                    .unwrap_or_default()
            );
            Ok(())
        }
    }
}
