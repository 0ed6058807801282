//! Unit tests of configuration parsing and validation.

use std::{io::Write, time::Duration};

use secrecy::ExposeSecret;

use super::{Config, ConfigError, EXAMPLE, parse_rate_limit};

fn secret_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

fn with_token_file(body: &str) -> (tempfile::NamedTempFile, String) {
    let f = secret_file("pat-na1-secret\n");
    let text = format!(
        "[hubspot]\ntoken = {{ file = {:?} }}\n{body}",
        f.path().display().to_string()
    );
    (f, text)
}

#[test]
fn example_parses_and_validates() {
    // The example reads its token from HUBSPOT_TOKEN; point it at a file instead so the test
    // does not depend on the environment, and keep everything else as written.
    let f = secret_file("pat-na1-secret\n");
    let text = EXAMPLE.replace(
        "token = { env = \"HUBSPOT_TOKEN\" }",
        &format!("token = {{ file = {:?} }}", f.path().display().to_string()),
    );
    assert_ne!(
        text, EXAMPLE,
        "the example's token line changed; update this test"
    );
    let c = Config::parse(&text).expect("example config is valid");
    assert_eq!(c.hubspot.token.expose_secret(), "pat-na1-secret");
    assert_eq!(c.hubspot.rate_limit, Some((100, Duration::from_secs(10))));
    assert_eq!(c.postgres.schema, "hubspot");
    let names: Vec<_> = c.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["contacts", "companies", "deals"]);
    assert_eq!(c.objects[0].direction, "two-way");
    assert_eq!(
        c.objects[0].fields["lifecyclestage"].1.as_deref(),
        Some("hubspot-wins")
    );
    assert_eq!(c.objects[2].schedule.every, Some(Duration::from_secs(900)));
    assert!(!c.objects[2].schedule.realtime);
}

#[test]
fn literal_token_is_refused() {
    let err = Config::parse("[hubspot]\ntoken = \"pat-na1-abc\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("hubspot.token") && msg.contains("literal"),
        "{msg}"
    );
    assert!(
        !msg.contains("pat-na1-abc"),
        "the secret leaked into the error: {msg}"
    );
}

#[test]
fn literal_postgres_url_with_password_is_refused_without_one_accepted() {
    let (_f, text) = with_token_file("[postgres]\nurl = \"postgres://u:pw@localhost/db\"\n");
    assert!(matches!(
        Config::parse(&text),
        Err(ConfigError::Invalid { .. })
    ));
    let (_f, text) = with_token_file("[postgres]\nurl = \"postgres://u@localhost/db\"\n");
    let c = Config::parse(&text).expect("no password: fine");
    assert_eq!(c.database_url().expect("set"), "postgres://u@localhost/db");
}

#[test]
fn bad_values_name_their_key() {
    for (body, key) in [
        (
            "[[object]]\nname = \"contacts\"\ndirection = \"sideways\"\n",
            "object[0].direction",
        ),
        (
            "[[object]]\nname = \"contacts\"\nconflict = \"coin-flip\"\n",
            "object[0].conflict",
        ),
        (
            "[[object]]\nname = \"contacts\"\n[[object]]\nname = \"contacts\"\n",
            "object[1].name",
        ),
        (
            "[[object]]\nname = \"deals\"\nmode = { every = \"soon\" }\n",
            "object[0].mode.every",
        ),
        ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
    ] {
        let (_f, text) = with_token_file(body);
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.starts_with(key), "{body:?} gave {err:?}");
    }
}

#[test]
fn unknown_keys_are_errors() {
    let (_f, text) = with_token_file("[postgres]\nshema = \"x\"\n");
    assert!(matches!(Config::parse(&text), Err(ConfigError::Syntax(_))));
}

#[test]
fn rate_limits_parse() {
    assert_eq!(
        parse_rate_limit("100/10s"),
        Ok(Some((100, Duration::from_secs(10))))
    );
    assert_eq!(
        parse_rate_limit("5/s"),
        Ok(Some((5, Duration::from_secs(1))))
    );
    assert_eq!(parse_rate_limit("off"), Ok(None));
    assert!(parse_rate_limit("0/10s").is_err());
    assert!(parse_rate_limit("lots").is_err());
}

#[test]
fn unset_token_variable_is_named() {
    let err = Config::parse("[hubspot]\ntoken = { env = \"HUBSYNC_TEST_SURELY_UNSET_VAR\" }\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("HUBSYNC_TEST_SURELY_UNSET_VAR is not set"),
        "{err}"
    );
}
