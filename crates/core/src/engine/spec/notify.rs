//! `spec.notify`: each webhook has one URL, given inline or by a Secret, that is http:// or
//! https://. Whether the receiver answers is the delivery's business, not the spec's.

use super::SpecError;
use super::gate::check_url;
use crate::crd::NotifySpec;

pub(super) fn validate_notify(notify: &NotifySpec) -> Result<(), SpecError> {
    for (index, webhook) in notify.webhooks.iter().enumerate() {
        let field = |name: &str| format!("spec.notify.webhooks[{index}]{name}");
        match (&webhook.url, &webhook.url_secret_ref) {
            (Some(_), Some(_)) => {
                return Err(SpecError::field(
                    field(""),
                    "sets both url and urlSecretRef; keep one",
                ));
            }
            (None, None) => {
                return Err(SpecError::field(
                    field(""),
                    "names no receiver; set url or urlSecretRef",
                ));
            }
            (url, _) => check_url(&field(".url"), url.as_deref())?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(json: serde_json::Value) -> Option<String> {
        let notify: NotifySpec = serde_json::from_value(json).expect("a notify spec");
        validate_notify(&notify).err().map(|error| error.to_string())
    }

    #[test]
    fn a_webhook_needs_exactly_one_http_url() {
        assert_eq!(
            problem(serde_json::json!({"webhooks": [{"url": "https://hooks.example/x"}]})),
            None
        );
        assert_eq!(
            problem(
                serde_json::json!({"webhooks": [{"urlSecretRef": {"name": "hook", "key": "url"}}]})
            ),
            None
        );
        let both = problem(serde_json::json!({"webhooks": [{
            "url": "http://a", "urlSecretRef": {"name": "hook", "key": "url"}}]}))
        .expect("refused");
        assert!(both.contains("spec.notify.webhooks[0]") && both.contains("both"), "{both}");
        let none =
            problem(serde_json::json!({"webhooks": [{"format": "Slack"}]})).expect("refused");
        assert!(none.contains("names no receiver"), "{none}");
        let ftp =
            problem(serde_json::json!({"webhooks": [{"url": "http://ok"}, {"url": "ftp://x"}]}))
                .expect("refused");
        assert!(ftp.contains("spec.notify.webhooks[1].url") && ftp.contains("ftp://x"), "{ftp}");
    }
}
