//! Rich embeds, each part kept within Discord's limit for it: text that is too long is cut with
//! an ellipsis rather than have Discord refuse the whole answer. (The 6,000 characters of all
//! parts together are the caller's to keep: ours are a few hundred.)

use serde::Serialize;

/// Discord's embed limits (characters).
const MAX_TITLE: usize = 256;
const MAX_DESCRIPTION: usize = 4096;
const MAX_FIELDS: usize = 25;
const MAX_FIELD_NAME: usize = 256;
const MAX_FIELD_VALUE: usize = 1024;
const MAX_FOOTER: usize = 2048;

/// An embed's side bar colours. Mid-tone, so that they stand out on dark and light themes.
pub mod colour {
    pub const GREEN: u32 = 0x2E_A0_43;
    pub const AMBER: u32 = 0xD2_99_22;
    pub const RED: u32 = 0xCF_22_2E;
    pub const GREY: u32 = 0x6E_76_81;
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Embed {
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub color: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footer: Option<Footer>,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
    pub inline: bool,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    pub text: String,
}

impl Embed {
    pub fn new(title: &str, colour: u32) -> Embed {
        Embed {
            title: cut(title, MAX_TITLE),
            color: colour,
            ..Embed::default()
        }
    }

    pub fn description(mut self, text: &str) -> Embed {
        self.description = cut(text, MAX_DESCRIPTION);
        self
    }

    /// Adds a field; an empty value (which Discord refuses) reads as a dash, and fields past
    /// Discord's 25 are left out.
    pub fn field(mut self, name: &str, value: &str, inline: bool) -> Embed {
        if self.fields.len() < MAX_FIELDS {
            let value = if value.trim().is_empty() {
                "—"
            } else {
                value
            };
            self.fields.push(Field {
                name: cut(name, MAX_FIELD_NAME),
                value: cut(value, MAX_FIELD_VALUE),
                inline,
            });
        }
        self
    }

    pub fn footer(mut self, text: &str) -> Embed {
        self.footer = Some(Footer {
            text: cut(text, MAX_FOOTER),
        });
        self
    }
}

/// `text` in at most `max` characters, cut with an ellipsis.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_discords_limits() {
        let mut embed = Embed::new(&"t".repeat(300), colour::GREEN).description("ok");
        for i in 0..30 {
            embed = embed.field(&format!("f{i}"), &"v".repeat(2000), true);
        }
        let embed = embed.field("empty", " ", false);
        assert_eq!(embed.title.chars().count(), 256);
        assert!(embed.title.ends_with('…'));
        assert_eq!(embed.fields.len(), 25);
        assert_eq!(embed.fields[0].value.chars().count(), 1024);
        let json = serde_json::to_value(&embed).unwrap();
        assert_eq!(json["color"], 0x2E_A0_43);
        assert!(json.get("footer").is_none());
    }

    #[test]
    fn an_empty_value_reads_as_a_dash() {
        let embed = Embed::new("t", colour::GREY).field("Online", "", true);
        assert_eq!(embed.fields[0].value, "—");
    }

    #[test]
    fn cuts_by_characters_not_bytes() {
        assert_eq!(cut("ééé", 2), "é…");
        assert_eq!(cut("ab", 2), "ab");
    }
}
