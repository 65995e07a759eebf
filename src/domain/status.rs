use std::fmt;
use std::str::FromStr;

/// A card's status. Registration creates `WaitingForActivation`; activation makes it `Active`;
/// lock makes it `Locked` from any state, and a locked card cannot be activated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardStatus {
    WaitingForActivation,
    Active,
    Locked,
}

/// A customer's status. This API sets only `NotActivated` (at registration) and `Active` (at
/// activation); the wider CPS also sets the other two, so the store must be able to hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerStatus {
    NotActivated,
    WaitingForActivationSmsConfirmation,
    Active,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

impl CardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaitingForActivation => "WaitingForActivation",
            Self::Active => "Active",
            Self::Locked => "Locked",
        }
    }
}

impl CustomerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotActivated => "NotActivated",
            Self::WaitingForActivationSmsConfirmation => "WaitingForActivationSmsConfirmation",
            Self::Active => "Active",
            Self::Disabled => "Disabled",
        }
    }
}

impl FromStr for CardStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::WaitingForActivation, Self::Active, Self::Locked]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl FromStr for CustomerStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::NotActivated,
            Self::WaitingForActivationSmsConfirmation,
            Self::Active,
            Self::Disabled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl fmt::Display for CardStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CustomerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_wire_names() {
        for s in [
            CardStatus::WaitingForActivation,
            CardStatus::Active,
            CardStatus::Locked,
        ] {
            assert_eq!(s.as_str().parse::<CardStatus>(), Ok(s));
        }
        for s in [
            CustomerStatus::NotActivated,
            CustomerStatus::WaitingForActivationSmsConfirmation,
            CustomerStatus::Active,
            CustomerStatus::Disabled,
        ] {
            assert_eq!(s.as_str().parse::<CustomerStatus>(), Ok(s));
        }
        assert!("active".parse::<CardStatus>().is_err());
    }
}
