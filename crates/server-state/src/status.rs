//! What /status and /help show. Built from the stored state alone, so that the interactions
//! component answers them at once, however slow Azure is with a start or a stop.

use heimdall_discord::embed::{colour, Embed};

use crate::billing::month_elapsed_fraction;
use crate::messages::{self, address, duration, short_size};
use crate::{ServerState, Status};

/// The owner's figures for the month's cost estimate (USD).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Prices {
    /// What a VM-hour costs: the spot price of the size, plus what the owner adds per hour.
    pub per_vm_hour: f64,
    /// What bills every month whether or not anyone plays (storage, the tick's operations).
    pub fixed_per_month: f64,
}

impl Prices {
    /// From the Spin variables; blank means 0 (no estimate shown when both are 0).
    pub fn parse(per_vm_hour: &str, fixed_per_month: &str) -> Result<Prices, String> {
        let price = |name: &str, text: &str| -> Result<f64, String> {
            let text = text.trim().trim_start_matches('$');
            if text.is_empty() {
                return Ok(0.0);
            }
            match text.parse::<f64>() {
                Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
                _ => Err(format!(
                    "{name} must be a price in USD like 0.02, not {text:?}"
                )),
            }
        };
        Ok(Prices {
            per_vm_hour: price("spot_price_per_hour", per_vm_hour)?,
            fixed_per_month: price("fixed_monthly_cost", fixed_per_month)?,
        })
    }

    fn known(&self) -> bool {
        self.per_vm_hour > 0.0 || self.fixed_per_month > 0.0
    }
}

/// The /status embed at `now_ms`.
pub fn status_embed(state: &ServerState, now_ms: u64, prices: Prices) -> Embed {
    let state = &ServerState {
        now_ms,
        ..state.clone()
    };
    let (emoji, name, colour) = match state.status {
        Status::Stopped => ("💤", "Stopped", colour::GREY),
        Status::Starting | Status::Booting => ("⏳", "Starting", colour::AMBER),
        Status::Running => ("✅", "Running", colour::GREEN),
        Status::Stopping => ("⏳", "Stopping", colour::AMBER),
        Status::Failed => ("❌", "Failed", colour::RED),
    };
    let title = match state.status_since_ms {
        0 => format!("{emoji} {name}"),
        since => format!(
            "{emoji} {name} for {}",
            duration(now_ms.saturating_sub(since))
        ),
    };
    let mut embed = Embed::new(&title, colour);
    embed = match state.status {
        Status::Running => running(embed, state),
        _ => embed.description(&messages::status(state)),
    };
    month(embed, state, prices)
}

/// Where to join, who is on, how long the session has run and when the world was saved.
fn running(embed: Embed, state: &ServerState) -> Embed {
    let mut join = format!("`{}`", address(state));
    if let Some(code) = &state.join_code {
        join.push_str(&format!("\nCrossplay join code: `{code}`"));
    }
    let ago = |at: u64| format!("{} ago", duration(state.now_ms.saturating_sub(at)));
    let mut session = format!("started {}", ago(state.start_began_ms));
    if let Some(size) = &state.size {
        session.push_str(&format!(" on a spot {}", short_size(size)));
    }
    let saved = state
        .last_saved_ms
        .map_or_else(|| "not yet this session".to_owned(), ago);
    let mut embed = embed
        .field("Join", &join, true)
        .field("World", state.world.as_deref().unwrap_or("—"), true)
        .field(&online_title(state), &state.players.join("\n"), true)
        .field("Session", &session, true)
        .field("Last save", &saved, true);
    if state.idle_warned {
        embed = embed.description("Nobody is online; the server stops soon unless someone joins.");
    }
    embed
}

fn online_title(state: &ServerState) -> String {
    format!("Online ({})", state.players.len())
}

/// This month's VM hours and, with the owner's prices, what they cost so far.
fn month(embed: Embed, state: &ServerState, prices: Prices) -> Embed {
    let hours = state.vm_ms_this_month(state.now_ms) as f64 / 3_600_000.0;
    let played = format!("{hours:.1} h of VM time");
    if !prices.known() {
        return embed.field("This month", &played, false);
    }
    let cost =
        hours * prices.per_vm_hour + prices.fixed_per_month * month_elapsed_fraction(state.now_ms);
    embed
        .field("This month", &format!("{played} · ≈ ${cost:.2} so far"), false)
        .footer(&format!(
            "Estimate: ${} per VM-hour + ${:.2} a month fixed, the owner's figures. VM time includes booting and the idle minutes before a stop.",
            price(prices.per_vm_hour),
            prices.fixed_per_month
        ))
}

/// A per-hour price with the digits it needs: $0.02, $0.0101.
fn price(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0');
    match text.split_once('.') {
        Some((_, cents)) if cents.len() < 2 => format!("{value:.2}"),
        _ => text.to_owned(),
    }
}

/// The /help text: the commands, who may use them, and how to join.
pub fn help(operators: &str) -> String {
    format!(
        "**Heimdall** starts the Valheim server when you want to play and stops it when nobody does, so that it costs money only while it runs.\n\
         \n\
         `/start`: start the server (a minute or a few). Who may: {operators}.\n\
         `/stop`: save the world and stop the server. Who may: {operators}.\n\
         `/status`: the server's state, its address and join code, who is online and this month's cost. Who may: everyone.\n\
         `/help`: this text. Who may: everyone.\n\
         \n\
         **How to join:** once the server is ready, open Valheim, choose *Join game* → *Add server* and enter the address from the ready message or /status (like `203.0.113.10:2456`). On Xbox or Game Pass, use the crossplay join code instead.\n\
         The server stops by itself when nobody has been online for a while; the world is saved first."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;

    const HOUR: u64 = 3_600_000;
    /// 2026-11-16T00:00:00Z: half of November gone.
    const MID_NOVEMBER: u64 = 1_794_787_200_000;

    fn running() -> ServerState {
        ServerState {
            status: Status::Running,
            status_since_ms: MID_NOVEMBER - HOUR,
            start_began_ms: MID_NOVEMBER - HOUR - 120_000,
            public_ip: Some("203.0.113.10".into()),
            world: Some("Vanaheim".into()),
            join_code: Some("371904".into()),
            size: Some("Standard_D2as_v4".into()),
            players: vec!["Freya @everyone".into(), "Ingrid".into()],
            last_saved_ms: Some(MID_NOVEMBER - 300_000),
            vm_since_ms: Some(MID_NOVEMBER - HOUR - 60_000),
            ..ServerState::new(Settings::default())
        }
    }

    fn field<'a>(embed: &'a Embed, name: &str) -> &'a str {
        &embed
            .fields
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no field {name} in {embed:?}"))
            .value
    }

    #[test]
    fn a_running_server_shows_where_to_join_and_who_is_on() {
        let prices = Prices::parse("0.02", "0.25").unwrap();
        let embed = status_embed(&running(), MID_NOVEMBER, prices);
        assert_eq!(embed.title, "✅ Running for 60 min");
        assert_eq!(embed.color, colour::GREEN);
        assert_eq!(
            field(&embed, "Join"),
            "`203.0.113.10:2456`\nCrossplay join code: `371904`"
        );
        assert_eq!(field(&embed, "World"), "Vanaheim");
        assert_eq!(field(&embed, "Online (2)"), "Freya @everyone\nIngrid");
        assert_eq!(
            field(&embed, "Session"),
            "started 62 min ago on a spot D2as_v4"
        );
        assert_eq!(field(&embed, "Last save"), "5 min ago");
        // 61 min of VM time at $0.02, and half of $0.25.
        assert_eq!(
            field(&embed, "This month"),
            "1.0 h of VM time · ≈ $0.15 so far"
        );
        assert!(embed
            .footer
            .unwrap()
            .text
            .starts_with("Estimate: $0.02 per VM-hour + $0.25"));
    }

    #[test]
    fn each_state_says_how_long_it_has_been_in_it() {
        let mut state = running();
        state.status = Status::Stopped;
        state.vm_since_ms = None;
        state.status_since_ms = MID_NOVEMBER - 3 * 24 * HOUR;
        let embed = status_embed(&state, MID_NOVEMBER, Prices::default());
        assert_eq!(embed.title, "💤 Stopped for 3 days");
        assert_eq!(
            embed.description,
            "The server is stopped; nothing is billed. Use /start to play."
        );
        assert_eq!(field(&embed, "This month"), "0.0 h of VM time");
        assert!(embed.footer.is_none());

        state.status = Status::Failed;
        state.failure = Some("Azure has no spot capacity right now.".into());
        let embed = status_embed(&state, MID_NOVEMBER, Prices::default());
        assert_eq!(embed.color, colour::RED);
        assert!(embed.description.starts_with("Azure has no spot capacity"));

        let never = ServerState::new(Settings::default());
        assert_eq!(
            status_embed(&never, MID_NOVEMBER, Prices::default()).title,
            "💤 Stopped"
        );
    }

    #[test]
    fn prices_are_checked() {
        assert_eq!(
            Prices::parse(" $0.0101 ", "").unwrap(),
            Prices {
                per_vm_hour: 0.0101,
                fixed_per_month: 0.0
            }
        );
        assert!(Prices::parse("-1", "0").is_err());
        assert!(Prices::parse("0.02", "a lot").is_err());
        assert!(Prices::parse("NaN", "0").is_err());
        assert_eq!(price(0.0101), "0.0101");
        assert_eq!(price(0.02), "0.02");
        assert_eq!(price(0.1), "0.10");
    }

    #[test]
    fn help_says_who_may_do_what() {
        let text = help("members with <@&1>");
        assert!(text.contains(
            "`/start`: start the server (a minute or a few). Who may: members with <@&1>."
        ));
        assert!(text.contains("`/status`"));
        assert!(text.chars().count() <= 2000);
    }
}
