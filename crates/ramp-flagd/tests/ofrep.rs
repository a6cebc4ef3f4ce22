//! OFREP over real HTTP: response shapes for every reason and error, bulk ETags, selectors,
//! authentication, body limits, live file reloads and the management endpoints.

mod support;

use std::time::Duration;

use ramp_flagd::ofrep::OfrepOptions;
use serde_json::{Value, json};
use support::{FlagServer, write_atomic};

const SHOP: &str = r##"{
  "metadata": {"flagSetId": "shop", "version": "7"},
  "flags": {
    "static-bool": {"state": "ENABLED", "variants": {"on": true, "off": false},
                    "defaultVariant": "on", "metadata": {"owner": "team-a"}},
    "targeted": {"state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"},
                 "defaultVariant": "red",
                 "targeting": {"if": [{"==": [{"var": "email"}, "a@example.com"]}, "blue", null]}},
    "disabled": {"state": "DISABLED", "variants": {"on": true}, "defaultVariant": "on"},
    "no-default": {"state": "ENABLED", "variants": {"one": 1, "two": 2}, "defaultVariant": null},
    "broken-rule": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
                    "targeting": {"$ref": "missing"}}
  }
}"##;

const OPS_YAML: &str = "metadata:\n  flagSetId: ops\nflags:\n  ops-only:\n    state: ENABLED\n    variants: {a: 1.5}\n    defaultVariant: a\n";

async fn shop() -> FlagServer {
    FlagServer::start(&[("shop.json", SHOP)], OfrepOptions::default()).await
}

#[tokio::test]
async fn single_evaluations_have_the_ofrep_shape_for_each_reason() {
    let server = shop().await;

    let reply = server
        .evaluate("static-bool", r#"{"context":{}}"#, &[])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({"key": "static-bool", "reason": "STATIC", "variant": "on", "value": true,
               "metadata": {"flagSetId": "shop", "version": "7", "owner": "team-a"}})
    );

    let matched = server
        .evaluate("targeted", r#"{"context":{"email":"a@example.com"}}"#, &[])
        .await
        .json();
    assert_eq!(matched["reason"], "TARGETING_MATCH");
    assert_eq!(matched["variant"], "blue");
    assert_eq!(matched["value"], "#00f");

    let fallback = server
        .evaluate("targeted", r#"{"context":{"email":"z@example.com"}}"#, &[])
        .await
        .json();
    assert_eq!(
        (
            &fallback["reason"],
            &fallback["variant"],
            &fallback["value"]
        ),
        (&json!("DEFAULT"), &json!("red"), &json!("#f00"))
    );

    let disabled = server.evaluate("disabled", "{}", &[]).await;
    assert_eq!(disabled.status, 200);
    let disabled = disabled.json();
    assert_eq!(disabled["reason"], "DISABLED");
    assert!(disabled.get("value").is_none() && disabled.get("variant").is_none());

    let code_default = server.evaluate("no-default", "", &[]).await.json();
    assert_eq!(code_default["reason"], "DEFAULT");
    assert!(code_default.get("value").is_none(), "{code_default}");
}

#[tokio::test]
async fn single_evaluation_errors_use_404_and_400() {
    let server = shop().await;

    let missing = server.evaluate("nope", "{}", &[]).await;
    assert_eq!(missing.status, 404);
    let body = missing.json();
    assert_eq!(body["key"], "nope");
    assert_eq!(body["errorCode"], "FLAG_NOT_FOUND");
    assert!(
        body["errorDetails"]
            .as_str()
            .is_some_and(|d| d.contains("nope"))
    );

    let broken = server.evaluate("broken-rule", "{}", &[]).await;
    assert_eq!(broken.status, 400);
    assert_eq!(broken.json()["errorCode"], "PARSE_ERROR");
    assert_eq!(broken.json()["key"], "broken-rule");

    for bad in [
        r#"{"context":"user-1"}"#,
        r#"{"context":[1,2]}"#,
        "{oops",
        "[]",
    ] {
        let reply = server.evaluate("static-bool", bad, &[]).await;
        assert_eq!(reply.status, 400, "{bad}: {reply:?}");
        let body = reply.json();
        assert_eq!(body["errorCode"], "INVALID_CONTEXT", "{bad}");
        assert_eq!(body["key"], "static-bool");
        assert!(body["errorDetails"].is_string());
    }
}

#[tokio::test]
async fn bulk_evaluation_lists_every_flag_with_errors_inline_and_set_metadata() {
    let server = shop().await;
    let reply = server
        .evaluate_all(r#"{"context":{"email":"a@example.com"}}"#, &[])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(
        body["metadata"],
        json!({"flagSetId": "shop", "version": "7"})
    );
    let flags = body["flags"].as_array().expect("flags array");
    let by_key = |key: &str| -> &Value {
        flags
            .iter()
            .find(|f| f["key"] == key)
            .unwrap_or_else(|| panic!("{key} missing from {body}"))
    };
    assert_eq!(flags.len(), 5);
    assert_eq!(by_key("static-bool")["reason"], "STATIC");
    assert_eq!(by_key("targeted")["reason"], "TARGETING_MATCH");
    assert_eq!(by_key("disabled")["reason"], "DISABLED");
    assert_eq!(by_key("no-default")["reason"], "DEFAULT");
    let broken = by_key("broken-rule");
    assert_eq!(broken["errorCode"], "PARSE_ERROR");
    assert!(broken.get("reason").is_none());

    let refused = server.evaluate_all(r#"{"context":5}"#, &[]).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["errorCode"], "INVALID_CONTEXT");
    assert!(refused.json().get("key").is_none());
}

#[tokio::test]
async fn bulk_etag_answers_304_until_the_result_changes() {
    let server = shop().await;
    let first = server.evaluate_all("{}", &[]).await;
    let tag = first.header("etag").expect("ETag header").to_owned();
    assert!(tag.starts_with('"'), "{tag}");

    let again = server.evaluate_all("{}", &[("If-None-Match", &tag)]).await;
    assert_eq!(again.status, 304);
    assert_eq!(again.body, "");
    assert_eq!(again.header("etag"), Some(tag.as_str()));

    let other_context = server
        .evaluate_all(
            r#"{"context":{"email":"a@example.com"}}"#,
            &[("If-None-Match", &tag)],
        )
        .await;
    assert_eq!(
        other_context.status, 200,
        "another context gives another body"
    );
    assert_ne!(other_context.header("etag"), Some(tag.as_str()));

    let path = &server.files[0];
    write_atomic(
        path,
        &SHOP.replace("\"version\": \"7\"", "\"version\": \"8\""),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let reply = server.evaluate_all("{}", &[("If-None-Match", &tag)]).await;
        if reply.status == 200 {
            assert_eq!(reply.json()["metadata"]["version"], "8");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still 304 after the edit"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn selector_header_narrows_to_a_flag_set_or_source() {
    let server = FlagServer::start(
        &[("shop.json", SHOP), ("ops.yaml", OPS_YAML)],
        OfrepOptions::default(),
    )
    .await;
    let everything = server.evaluate_all("{}", &[]).await.json();
    assert_eq!(everything["flags"].as_array().map(Vec::len), Some(6));

    let ops = server
        .evaluate_all("{}", &[("Flagd-Selector", "flagSetId=ops")])
        .await
        .json();
    let keys: Vec<&Value> = ops["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["key"])
        .collect();
    assert_eq!(keys, [&json!("ops-only")]);
    assert_eq!(ops["metadata"]["flagSetId"], "ops");

    let hidden = server
        .evaluate("static-bool", "{}", &[("Flagd-Selector", "flagSetId=ops")])
        .await;
    assert_eq!(hidden.status, 404);

    let source = format!("source={}", server.files[0].display());
    let shop_only = server
        .evaluate_all("{}", &[("Flagd-Selector", &source)])
        .await
        .json();
    assert_eq!(shop_only["flags"].as_array().map(Vec::len), Some(5));

    let value = server
        .evaluate("ops-only", "{}", &[("Flagd-Selector", "flagSetId=ops")])
        .await
        .json();
    assert_eq!(value["value"], json!(1.5));

    let bad = server
        .evaluate("ops-only", "{}", &[("Flagd-Selector", "color=blue")])
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["errorCode"], "GENERAL");
}

#[tokio::test]
async fn a_token_is_required_when_configured() {
    let options = OfrepOptions {
        token: Some("s3cret".to_owned()),
        ..OfrepOptions::default()
    };
    let server = FlagServer::start(&[("shop.json", SHOP)], options).await;
    let none = server.evaluate("static-bool", "{}", &[]).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let wrong = server
        .evaluate("static-bool", "{}", &[("Authorization", "Bearer guess")])
        .await;
    assert_eq!(wrong.status, 403);
    let bulk_wrong = server.evaluate_all("{}", &[("X-API-Key", "guess")]).await;
    assert_eq!(bulk_wrong.status, 403);
    let bearer = server
        .evaluate("static-bool", "{}", &[("Authorization", "Bearer s3cret")])
        .await;
    assert_eq!(bearer.status, 200);
    let api_key = server.evaluate_all("{}", &[("X-API-Key", "s3cret")]).await;
    assert_eq!(api_key.status, 200);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let options = OfrepOptions {
        max_body_bytes: 1024,
        ..OfrepOptions::default()
    };
    let server = FlagServer::start(&[("shop.json", SHOP)], options).await;
    let big = format!(r#"{{"context":{{"blob":"{}"}}}}"#, "x".repeat(4096));
    let single = server.evaluate("static-bool", &big, &[]).await;
    assert_eq!(single.status, 413, "{single:?}");
    let bulk = server.evaluate_all(&big, &[]).await;
    assert_eq!(bulk.status, 413, "{bulk:?}");
    let small = server
        .evaluate("static-bool", r#"{"context":{"blob":"x"}}"#, &[])
        .await;
    assert_eq!(small.status, 200);
}

#[tokio::test]
async fn file_edits_are_served_and_broken_edits_refused() {
    let server = shop().await;
    let path = server.files[0].clone();
    write_atomic(
        &path,
        &SHOP.replace(
            r#""defaultVariant": "on", "metadata""#,
            r#""defaultVariant": "off", "metadata""#,
        ),
    );
    server
        .wait_for_value("static-bool", &json!(false), Duration::from_secs(2))
        .await;

    write_atomic(
        &path,
        r#"{"flags": {"static-bool": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "gone"}}}"#,
    );
    // The refusal comes once the broken content has settled.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while server.source.reload_failures() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the broken edit was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let still = server.evaluate("static-bool", "{}", &[]).await.json();
    assert_eq!(
        still["value"],
        json!(false),
        "the last good flags keep serving"
    );
    assert_eq!(server.evaluate("targeted", "{}", &[]).await.status, 200);

    let metrics = server.management_get("/metrics").await;
    assert!(
        metrics
            .body
            .contains("ramp_flags_config_reload_failures_total 1\n"),
        "{}",
        metrics.body
    );
}

/// A rule that needs both a configured context value (`email`) and a caller's key (`plan`).
const PRO_FOR_A: &str = r#"{"flags": {"offer": {"state": "ENABLED",
  "variants": {"pro": "pro-offer", "none": "no-offer"}, "defaultVariant": "none",
  "targeting": {"if": [{"and": [{"==": [{"var": "email"}, "a@example.com"]},
                                {"==": [{"var": "plan"}, "pro"]}]}, "pro", null]}}}}"#;

#[tokio::test]
async fn static_context_values_join_every_request_and_win_over_the_callers() {
    let options = OfrepOptions {
        context_values: json!({"email": "a@example.com"})
            .as_object()
            .cloned()
            .expect("an object"),
        ..OfrepOptions::default()
    };
    let server = FlagServer::start(&[("offer.json", PRO_FOR_A)], options).await;

    let caller_keys_kept = r#"{"context": {"plan": "pro"}}"#;
    let single = server.evaluate("offer", caller_keys_kept, &[]).await.json();
    assert_eq!(
        (&single["reason"], &single["value"]),
        (&json!("TARGETING_MATCH"), &json!("pro-offer"))
    );
    let overridden = r#"{"context": {"plan": "pro", "email": "z@example.com"}}"#;
    let single = server.evaluate("offer", overridden, &[]).await.json();
    assert_eq!(
        single["value"], "pro-offer",
        "the configured email wins: {single}"
    );
    let bulk = server.evaluate_all(overridden, &[]).await.json();
    assert_eq!(bulk["flags"][0]["value"], "pro-offer", "{bulk}");
    let without_plan = server.evaluate("offer", "{}", &[]).await.json();
    assert_eq!(without_plan["value"], "no-offer", "{without_plan}");

    let unconfigured =
        FlagServer::start(&[("offer.json", PRO_FOR_A)], OfrepOptions::default()).await;
    let plain = unconfigured
        .evaluate("offer", caller_keys_kept, &[])
        .await
        .json();
    assert_eq!(
        plain["value"], "no-offer",
        "without context values: {plain}"
    );
}

#[tokio::test]
async fn management_endpoints_report_health_readiness_and_metrics() {
    let server = shop().await;
    let health = server.management_get("/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let ready = server.management_get("/readyz").await;
    assert_eq!(ready.status, 200);

    server.evaluate("static-bool", "{}", &[]).await;
    server.evaluate("static-bool", "{}", &[]).await;
    server.evaluate("nope", "{}", &[]).await;
    // A bulk evaluation counts once per flag it resolves.
    server.evaluate_all("{}", &[]).await;
    let metrics = server.management_get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = &metrics.body;
    assert!(
        text.contains("ramp_flags_evaluations_total{flag=\"static-bool\",reason=\"STATIC\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("ramp_flags_evaluations_total{flag=\"disabled\",reason=\"DISABLED\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("ramp_flags_evaluations_total{flag=\"broken-rule\",reason=\"ERROR\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("ramp_flags_unknown_flag_evaluations_total 1\n"),
        "{text}"
    );
    assert!(
        text.contains("ramp_flags_config_reloads_total 1\n"),
        "{text}"
    );
}
