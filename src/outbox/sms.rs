//! Text messages to customers (contract section 8): one-time codes for a step-up, a phone
//! change and a password reset, sent through the operator's SMS gateway ([`super::sms_gateway`])
//! by the worker, retried, and kept as dead letters when the gateway will not take them. A
//! message holds a phone number and a code: its row is deleted once delivered, and an erasure
//! deletes it whatever its state.

use super::effect::{DeliveryError, Kind, Targets};
pub use super::sms_gateway::{SmsClient, SmsError, SmsFormat, SmsMessage, SmsSettings, check_url};

pub struct Sms;

impl Kind for Sms {
    const NAME: &'static str = "sms";
    // The gateway may be slow: the worker sends it, woken at once.
    const IN_REQUEST: bool = false;
    const CAN_DIE: bool = true;
    // A code and a phone number: deleted once delivered.
    const KEPT: bool = false;
    const PERSONAL: bool = true;

    type Payload = SmsMessage;

    fn subject(message: &SmsMessage) -> String {
        format!("sms:{}", message.message_id)
    }

    async fn deliver(message: &SmsMessage, targets: &Targets) -> Result<(), DeliveryError> {
        let sms = targets.sms.as_ref().ok_or(DeliveryError::NoSms)?;
        sms.send(message).await?;
        tracing::info!(message_id = %message.message_id, "text message handed to the SMS gateway");
        Ok(())
    }
}
