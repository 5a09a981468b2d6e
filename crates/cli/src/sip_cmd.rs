//! Phones: `pbx365 ext sip-secret`, `pbx365 sip config`, and Kamailio beside `serve`/`demo`.

use anyhow::anyhow;
use pbx365_domain::settings::Settings;
use pbx365_sip::supervisor::{find_kamailio, Supervisor};
use pbx365_sip::{KamailioConfig, RpcClient, SipPusher};
use pbx365_web::AppState;

/// `pbx365 ext sip-secret NUMBER`: the new secret alone on stdout.
pub async fn sip_secret(settings: Settings, number: &str) -> anyhow::Result<()> {
    let (store, settings) = crate::commands::open(settings).await?;
    let app = pbx365_app::App::new(store, settings);
    let secret = app
        .rotate_sip_secret("cli", number.trim())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    // Alone on stdout, so `SECRET=$(pbx365 ext sip-secret 101)` works; never logged.
    println!("{secret}");
    Ok(())
}

/// `pbx365 sip config`: the `kamailio.cfg` of this deployment on stdout.
pub async fn config(settings: Settings) -> anyhow::Result<()> {
    // The console's stored settings count too: open the store as `serve` does.
    let (_store, settings) = crate::commands::open(settings).await?;
    let cfg = KamailioConfig::from_settings(&settings).map_err(|e| anyhow!("{e}"))?;
    print!("{}", cfg.render());
    Ok(())
}

/// Whether `serve`/`demo` with `settings` run Kamailio.
pub fn runs_kamailio(settings: &Settings) -> bool {
    settings.sip.manage_kamailio != Some(false) && find_kamailio().is_some()
}

/// Whether this process runs Kamailio: `sip.manage_kamailio`, by default when it is installed.
fn managed(settings: &Settings) -> Option<std::path::PathBuf> {
    let binary = find_kamailio();
    match (settings.sip.manage_kamailio, binary) {
        (Some(false), _) => None,
        (Some(true), None) => {
            tracing::warn!("sip.manage_kamailio is true but no `kamailio` binary is on PATH: phones cannot register (install the kamailio packages)");
            None
        }
        (_, binary) => binary,
    }
}

/// Starts SIP for a server: the pusher of routing changes, and Kamailio as a supervised
/// child when this process manages it. `None` when SIP is off here.
pub async fn start(state: &AppState) -> anyhow::Result<Option<Supervisor>> {
    let settings = state.settings();
    let binary = managed(&settings);
    // Kamailio run as a service by the admin (manage_kamailio = false) still gets the pushes.
    if binary.is_none() && settings.sip.manage_kamailio != Some(false) {
        return Ok(None);
    }
    let rpc = RpcClient::new(&settings.sip.rpc_url);
    state.app.set_sip_pusher(SipPusher::start(
        rpc.clone(),
        &settings.effective_sip_domain(),
    ));
    let Some(binary) = binary else {
        return Ok(None);
    };
    let mut cfg = KamailioConfig::from_settings(&settings).map_err(|e| anyhow!("{e}"))?;
    cfg.log_stderr = true;
    cfg.children = 2;
    let dir = settings.data_dir.join("kamailio");
    let supervisor = Supervisor::start(&binary, &dir, &cfg.render(), rpc)
        .await
        .map_err(|e| anyhow!("cannot start Kamailio in {}: {e}", dir.display()))?;
    Ok(Some(supervisor))
}

/// The demo's lines about phones.
pub fn demo_lines(settings: &Settings, sip_on: bool) -> Vec<String> {
    if !sip_on {
        return vec![
            "  Phones:         off. Install Kamailio (apt-get install kamailio kamailio-sqlite-modules kamailio-presence-modules) and run the demo again,".into(),
            "                  or run Kamailio yourself with `pbx365 sip config` and set sip.manage_kamailio = false.".into(),
        ];
    }
    vec![
        format!(
            "  Phones (SIP):   Kamailio on {} (domain {}).",
            settings.sip.listen,
            settings.effective_sip_domain()
        ),
        "                  A softphone registers as NUMBER@DOMAIN with the secret from `pbx365 ext sip-secret NUMBER`,".into(),
        format!(
            "                  e.g. pbx365 --config {} ext sip-secret 100",
            settings.data_dir.join("pbx365.toml").display()
        ),
    ]
}
