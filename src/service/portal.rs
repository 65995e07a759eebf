//! The customer's own door (contract section 8), independent of HTTP: signing in with a card
//! number and its PIN (then a password), the password itself, and the customer's sessions.
//!
//! Every refused sign-in is one refusal, whatever the reason (no such card, a wrong PIN or
//! password, a locked card, an erased customer), and costs the same work: one HMAC under every
//! PIN key and one Argon2id verification, against stand-ins where the card or its password is
//! missing. Since every try then costs a password hash, the throttles come first: per submitted
//! card number and service-wide here (in the database, shared by every instance), per address
//! at the edge.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::Utc;

use super::desk::Desk;
use super::sessions::{Found, Session, Sessions};
use super::{ApplyError, Failure, Service};
use crate::domain::{
    Actor, Applied, CardCommand, CardNumber, CardStatus, CardView, Channel, ConsentCommand,
    ConsentTexts, CustomerCommand, CustomerId, ExpectedVersion, LOCKED_RETRY_AFTER, Language,
    LockReason, MandatoryFields, NewPassword, PasswordError, PinCheck, ProfileChange, ProfileField,
    Refusal, SignInLimits, Throttle,
};
use crate::domain::{CODE_TRIES, CODE_TTL, CodePurpose, PhoneNumber};
use crate::store::{
    Account, ConsentEvent, DeskCustomer, HistoryEntry, HistoryOf, PortalStore, Proof,
};
use crate::store::{CodeCheck, IssuedCode};

/// The service-wide breaker: when this many card numbers failed to sign in within the window,
/// every sign-in waits until fewer have (a spray of one PIN over many cards, from however many
/// addresses, trips it; per-card counters never would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceBreaker {
    pub max_failing_cards: i64,
    pub window: Duration,
}

impl Default for ServiceBreaker {
    fn default() -> Self {
        Self {
            max_failing_cards: 100,
            window: Duration::from_secs(60),
        }
    }
}

/// How a portal session was opened, and so what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// With the card's PIN: it may only set a password and sign out.
    Pin,
    Password,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pin => "pin",
            Self::Password => "password",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pin" => Some(Self::Pin),
            "password" => Some(Self::Password),
            _ => None,
        }
    }
}

/// A portal session in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSession {
    /// The hash of its id (what the store knows it by).
    pub key: String,
    pub customer: CustomerId,
    /// The card signed in with.
    pub card: CardNumber,
    pub level: Level,
    pub public_id: String,
    /// Until when a step-up raised it, if one did.
    pub elevated_until: Option<chrono::DateTime<Utc>>,
}

impl CustomerSession {
    /// Whether a step-up raised it and that is still in force.
    pub fn stepped_up(&self) -> bool {
        self.elevated_until.is_some_and(|until| until > Utc::now())
    }
}

/// How long a step-up lasts.
pub const STEP_UP: Duration = Duration::from_secs(10 * 60);

/// A sign-in that opened a session (`Debug` leaves out its id).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The session's id: the client's only copy.
    pub session: String,
    pub must_set_password: bool,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("must_set_password", &self.must_set_password)
            .finish_non_exhaustive()
    }
}

/// Why a credential was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The one refusal: nothing more is said.
    #[error("refused")]
    Refused,
    /// Too many failures (of this card number, or service-wide): not before this long.
    #[error("too many failed sign-ins")]
    Throttled(Duration),
    /// Every password hashing slot is taken: nothing was tried.
    #[error("busy")]
    Busy,
    /// No SMS gateway is configured.
    #[error("no SMS gateway")]
    Unavailable,
    #[error("the new password is not allowed: {0}")]
    Weak(PasswordError),
    #[error(transparent)]
    Failed(#[from] Failure),
}

impl From<crate::store::StoreError> for CredentialError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Failed(e.into())
    }
}

/// Argon2id at OWASP's parameters (19 MiB, two passes, one lane), run off the async runtime on
/// at most `slots` threads at once: hashing is the costliest thing a request can ask for.
#[derive(Clone)]
pub struct Hasher {
    slots: Arc<tokio::sync::Semaphore>,
}

/// How long a sign-in waits for a hashing slot before it is answered "busy".
const SLOT_WAIT: Duration = Duration::from_secs(2);

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP's Argon2id parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash no password matches but whose check costs what a real one's does: what a customer
/// without a password is checked against.
fn stand_in() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).expect("a salt");
        let random = crate::secret::generate();
        argon2()
            .hash_password(random.as_bytes(), &salt)
            .map(|h| h.to_string())
            .expect("hashing a random text")
    })
}

impl Hasher {
    pub fn new(slots: usize) -> Self {
        Self {
            slots: Arc::new(tokio::sync::Semaphore::new(slots.max(1))),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CredentialError> {
        let permit = tokio::time::timeout(SLOT_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| CredentialError::Busy)?
            .map_err(|_| CredentialError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| CredentialError::Busy)
    }

    /// Whether `password` matches `hash`; with no hash, the same work against a stand-in.
    async fn verify(
        &self,
        hash: Option<String>,
        password: String,
    ) -> Result<bool, CredentialError> {
        self.run(move || {
            let real = hash.is_some();
            let hash = hash.unwrap_or_else(|| stand_in().to_owned());
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
                && real
        })
        .await
    }

    async fn hash(&self, password: NewPassword) -> Result<String, CredentialError> {
        self.run(move || {
            let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).expect("a salt");
            argon2()
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| {
                    Failure::from(crate::store::StoreError::failed(
                        "hash a password",
                        e.to_string(),
                    ))
                })
        })
        .await?
        .map_err(CredentialError::Failed)
    }

    /// Computes the stand-in once, so that the first sign-in is not the slow one.
    pub async fn warm(&self) {
        let _ = self.run(|| stand_in().len()).await;
    }
}

/// What the portal is built from.
pub struct PortalParts {
    pub service: Service,
    /// The desk's operations the customer shares: the erasure, the history.
    pub desk: Desk,
    pub store: Arc<dyn PortalStore>,
    pub sessions: Sessions,
    pub pin: PinCheck,
    pub limits: SignInLimits,
    pub breaker: ServiceBreaker,
    pub hasher: Hasher,
    pub texts: ConsentTexts,
    pub mandatory: MandatoryFields,
    /// The art. 15(1) information the export carries.
    pub notice: serde_json::Value,
    /// Whether an SMS gateway is configured (else codes answer "unavailable").
    pub sms: bool,
}

#[derive(Clone)]
pub struct Portal {
    service: Service,
    desk: Desk,
    store: Arc<dyn PortalStore>,
    sessions: Sessions,
    pin: Arc<PinCheck>,
    limits: SignInLimits,
    breaker: ServiceBreaker,
    hasher: Hasher,
    texts: Arc<ConsentTexts>,
    mandatory: Arc<MandatoryFields>,
    notice: Arc<serde_json::Value>,
    sms: bool,
}

/// The customer as the portal shows them: the account and the card signed in with.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub account: Account,
    pub card: CardView,
    /// The operator's required properties not yet given.
    pub missing: Vec<ProfileField>,
}

/// Why a code was not sent.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// No SMS gateway is configured.
    #[error("no SMS gateway")]
    Unavailable,
    /// The customer has no phone number on record to send it to.
    #[error("no phone number on record")]
    NoPhone,
    /// A code for the same purpose went out less than a minute ago.
    #[error("a code was sent a moment ago")]
    TooSoon,
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// Six random digits from the operating system's generator, every value equally likely.
fn new_code() -> String {
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let n = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        // 4,294,000,000 is the largest multiple of a million below 2^32.
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// The text of a code's message: the code and its rule, nothing else.
fn code_text(language: Language, code: &str) -> String {
    match language {
        Language::Polish => {
            format!("Twój kod: {code}. Ważny 10 minut. Nie podawaj go nikomu, także konsultantom.")
        }
        Language::English => {
            format!(
                "Your code: {code}. Valid for 10 minutes. Never tell it to anyone, staff included."
            )
        }
    }
}

/// What an erasure answers: its id and time, and the consent events it removed by purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: String,
    pub at: chrono::DateTime<Utc>,
    pub removed: BTreeMap<String, usize>,
}

/// How a receipt counts the objection's events, beside the purposes' own counts.
pub const OBJECTION: &str = "MarketingObjection";

/// History entries read per page for an export.
const HISTORY_PAGE: i64 = 100;

/// Everything held about one customer.
#[derive(Debug, Clone)]
pub struct Export {
    pub account: Account,
    pub cards: DeskCustomer,
    pub consents: Vec<ConsentEvent>,
    pub sessions: Vec<Session>,
    pub history: Vec<HistoryEntry>,
    pub missing: Vec<ProfileField>,
    /// The art. 15(1) information: purposes, recipients, retention, source, rights.
    pub notice: Arc<serde_json::Value>,
}

/// How a consent change came, for its proof.
#[derive(Debug, Clone)]
pub struct Via {
    pub channel: Channel,
    pub request_id: Option<String>,
    pub language: Language,
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Portal {
    pub fn new(parts: PortalParts) -> Self {
        Self {
            service: parts.service,
            desk: parts.desk,
            store: parts.store,
            sessions: parts.sessions,
            pin: Arc::new(parts.pin),
            limits: parts.limits,
            breaker: parts.breaker,
            hasher: parts.hasher,
            texts: Arc::new(parts.texts),
            mandatory: Arc::new(parts.mandatory),
            notice: Arc::new(parts.notice),
            sms: parts.sms,
        }
    }

    /// The art. 15(1) information, as the operator publishes it.
    pub fn notice(&self) -> &Arc<serde_json::Value> {
        &self.notice
    }

    pub fn texts(&self) -> &ConsentTexts {
        &self.texts
    }

    /// The customer of `session` and the card they signed in with; `None` when either is gone.
    pub async fn account(&self, session: &CustomerSession) -> Result<Option<AccountView>, Failure> {
        let Some(account) = self.store.account(&session.customer).await? else {
            return Ok(None);
        };
        let Some(card) = self.service.card(&session.card).await? else {
            return Ok(None);
        };
        let missing = self.mandatory.missing(&account.profile);
        Ok(Some(AccountView {
            account,
            card,
            missing,
        }))
    }

    /// Applies the customer's partial update of their profile, when they saw the version
    /// `expected` admits.
    pub async fn change_profile(
        &self,
        session: &CustomerSession,
        expected: ExpectedVersion,
        change: ProfileChange,
    ) -> Result<Applied, ApplyError> {
        let (store, policy) = (self.store.clone(), self.service.policy);
        let (customer, card) = (session.customer, session.card.clone());
        let work = Arc::new((expected, change));
        let result = self
            .service
            .write("profile_change", move || {
                let (store, work, card) = (store.clone(), work.clone(), card.clone());
                async move {
                    let (expected, change) = &*work;
                    let actor = Actor::Customer(customer);
                    store
                        .change_profile(
                            (&customer, &card),
                            expected,
                            change,
                            &actor,
                            Utc::now(),
                            &policy,
                        )
                        .await
                }
            })
            .await
            .map_err(|e| ApplyError::Failed(e.into()))?;
        let applied = result.map_err(ApplyError::Refused)?;
        tracing::info!(customer_id = %customer, changed = applied == Applied::Changed, "profile updated");
        Ok(applied)
    }

    /// Gives or withdraws a consent, or the objection; its event records `via`.
    pub async fn change_consent(
        &self,
        session: &CustomerSession,
        command: ConsentCommand,
        via: Via,
    ) -> Result<Applied, ApplyError> {
        let (store, policy) = (self.store.clone(), self.service.policy);
        let (customer, card) = (session.customer, session.card.clone());
        let proof = Proof {
            channel: via.channel,
            actor: Actor::Customer(customer),
            request_id: via.request_id,
            language: Some(via.language),
        };
        let work = Arc::new((command, proof));
        let result = self
            .service
            .write("consent_change", move || {
                let (store, work, card) = (store.clone(), work.clone(), card.clone());
                async move {
                    let (command, proof) = &*work;
                    store
                        .change_consent((&customer, &card), command, proof, Utc::now(), &policy)
                        .await
                }
            })
            .await
            .map_err(|e| ApplyError::Failed(e.into()))?;
        let applied = result.map_err(ApplyError::Refused)?;
        tracing::info!(customer_id = %customer, changed = applied == Applied::Changed, "consents updated");
        Ok(applied)
    }

    /// The customer's consent events, oldest first.
    pub async fn consent_history(
        &self,
        customer: &CustomerId,
    ) -> Result<Vec<ConsentEvent>, Failure> {
        Ok(self.store.consent_events(customer).await?)
    }

    /// Locks the card signed in with, as lost (the customer's own lock; ALCS's effects).
    pub async fn lock_card(&self, session: &CustomerSession) -> Result<Applied, ApplyError> {
        let command = CardCommand::Lock {
            reason: LockReason::Lost,
            note: None,
        };
        self.service
            .apply_as(
                session.card.clone(),
                command,
                Actor::Customer(session.customer),
            )
            .await
    }

    /// A page of the customer's trail, newest first.
    pub async fn history(
        &self,
        customer: &CustomerId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, Failure> {
        Ok(self
            .desk
            .history(&HistoryOf::Customer(*customer), before, limit)
            .await?
            .unwrap_or_default())
    }

    /// Erases the customer's personal data: the desk's erasure, the customer as actor; the
    /// receipt counts the consent events it removed, by purpose.
    pub async fn erase(&self, customer: CustomerId) -> Result<Receipt, ApplyError> {
        let events = self
            .store
            .consent_events(&customer)
            .await
            .map_err(Failure::from)?;
        let mut removed: BTreeMap<String, usize> = BTreeMap::new();
        for event in events {
            let purpose = event.purpose.unwrap_or_else(|| OBJECTION.to_owned());
            *removed.entry(purpose).or_default() += 1;
        }
        self.desk
            .apply_to_customer_as(customer, CustomerCommand::Erase, Actor::Customer(customer))
            .await?;
        let receipt = Receipt {
            id: uuid::Uuid::new_v4().simple().to_string(),
            at: Utc::now(),
            removed,
        };
        tracing::info!(customer_id = %customer, receipt_id = receipt.id, "customer erased their personal data");
        Ok(receipt)
    }

    /// Everything held about the session's customer, for the download (art. 15 and 20).
    pub async fn export(&self, session: &CustomerSession) -> Result<Option<Export>, Failure> {
        let customer = session.customer;
        let Some(account) = self.store.account(&customer).await? else {
            return Ok(None);
        };
        let Some(cards) = self.desk.customer(&customer).await? else {
            return Ok(None);
        };
        let consents = self.store.consent_events(&customer).await?;
        let sessions = self.sessions_of(&customer).await?;
        let mut history = Vec::new();
        let mut before = None;
        loop {
            let page = self.history(&customer, before, HISTORY_PAGE).await?;
            let done = page.len() < HISTORY_PAGE as usize;
            before = page.last().map(|e| e.id);
            history.extend(page);
            if done || before.is_none() {
                break;
            }
        }
        Ok(Some(Export {
            missing: self.mandatory.missing(&account.profile),
            account,
            cards,
            consents,
            sessions,
            history,
            notice: self.notice.clone(),
        }))
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Whether the service-wide breaker lets a try through.
    async fn admit_service(&self) -> Result<(), CredentialError> {
        let failing = self
            .store
            .failing_card_numbers(Utc::now() - chrono(self.breaker.window))
            .await?;
        if failing >= self.breaker.max_failing_cards {
            crate::warn_limited!(
                "portal-breaker",
                failing_card_numbers = failing,
                "portal sign-ins refused: too many card numbers failed lately (service-wide breaker)"
            );
            return Err(CredentialError::Throttled(self.breaker.window));
        }
        Ok(())
    }

    /// Whether `card` (as submitted) may try now: the service-wide breaker, then its own
    /// failures.
    async fn admit(&self, card: &str) -> Result<(), CredentialError> {
        self.admit_service().await?;
        self.admit_card(card).await
    }

    /// Whether `card`'s own failures let it try now. A signed-in customer's tries (a step-up,
    /// a new password) pass this alone: a spray of strangers' sign-ins must not stop them.
    async fn admit_card(&self, card: &str) -> Result<(), CredentialError> {
        if let Some(failures) = self.store.sign_in_failures(card).await? {
            match self
                .limits
                .throttle(failures.count, failures.last, Utc::now())
            {
                Throttle::Open => {}
                Throttle::Wait(wait) => return Err(CredentialError::Throttled(wait)),
                Throttle::Locked => return Err(CredentialError::Throttled(LOCKED_RETRY_AFTER)),
            }
        }
        Ok(())
    }

    /// Whether a reset by SMS may be tried for `card`: the breaker, the card's waits, and a
    /// locked sign-in (which a reset is for) only until as many failures again: then the desk.
    async fn admit_reset(&self, card: &str) -> Result<(), CredentialError> {
        self.admit_service().await?;
        if let Some(failures) = self.store.sign_in_failures(card).await? {
            let beyond = failures.count >= 2 * i64::from(self.limits.lock_after);
            match self
                .limits
                .throttle(failures.count, failures.last, Utc::now())
            {
                Throttle::Open => {}
                Throttle::Locked if !beyond => {}
                Throttle::Wait(wait) => return Err(CredentialError::Throttled(wait)),
                Throttle::Locked => return Err(CredentialError::Throttled(LOCKED_RETRY_AFTER)),
            }
        }
        Ok(())
    }

    /// The work of a try, done for a refusal that needs none (a malformed sign-in), so that
    /// it takes the time any other refusal takes.
    pub async fn refuse(&self, secret: String) -> CredentialError {
        self.pin.matches_nothing("", &secret);
        match self.hasher.verify(None, secret).await {
            Ok(_) => CredentialError::Refused,
            Err(e) => e,
        }
    }

    /// Counts a failure of `card` (as submitted) and answers the one refusal.
    async fn failed(&self, card: &str) -> CredentialError {
        match self.store.record_sign_in_failure(card, Utc::now()).await {
            Ok(failures) => {
                tracing::info!(failures, "portal credential refused");
                CredentialError::Refused
            }
            Err(e) => e.into(),
        }
    }

    /// Signs in with `card` as submitted (`None`: not a card number at all) and `secret` (the
    /// PIN, or the password once one is set).
    pub async fn sign_in(
        &self,
        card: Result<CardNumber, String>,
        secret: String,
    ) -> Result<SignedIn, CredentialError> {
        let submitted = match &card {
            Ok(card) => card.as_str().to_owned(),
            // Not a card number: no card can have it, and no row is kept for it.
            Err(_) => return Err(self.refuse(secret).await),
        };
        self.admit(&submitted).await?;
        let subject = match &card {
            Ok(card) => self.store.sign_in_subject(card).await?,
            Err(_) => None,
        };
        // The same work for every try: one HMAC (under every key), one Argon2id check.
        let pin_ok = match (&card, &subject) {
            (Ok(card), Some(s)) if s.password_hash.is_none() => {
                self.pin.matches(card, &secret, &s.pin)
            }
            _ => {
                self.pin.matches_nothing(&submitted, &secret);
                false
            }
        };
        let password_hash = subject.as_ref().and_then(|s| s.password_hash.clone());
        let has_password = password_hash.is_some();
        let password_ok = self.hasher.verify(password_hash, secret).await?;
        let (Ok(card), Some(subject)) = (card, subject) else {
            return Err(self.failed(&submitted).await);
        };
        let usable = subject.card_status != CardStatus::Locked && !subject.erased;
        let proven = if has_password { password_ok } else { pin_ok };
        if !(usable && proven) {
            return Err(self.failed(&submitted).await);
        }
        self.store.clear_sign_in_failures(&submitted).await?;
        let level = if has_password {
            Level::Password
        } else {
            Level::Pin
        };
        let session = self
            .sessions
            .open(&subject.customer.to_string(), card.as_str(), level.as_str())
            .await?;
        tracing::info!(customer_id = %subject.customer, level = level.as_str(), "portal session opened");
        Ok(SignedIn {
            session,
            must_set_password: !has_password,
        })
    }

    /// The session `id` names, when it is a portal session in force.
    pub async fn session(&self, id: &str) -> Result<Option<CustomerSession>, Failure> {
        match self.sessions.find(id).await? {
            Found::Live(session) => Ok(read_session(session)),
            Found::Ended | Found::Unknown => Ok(None),
        }
    }

    /// Sets the password of the session's customer: `old` is the card's PIN the first time,
    /// the password after. The session becomes a password session; every other one ends.
    pub async fn set_password(
        &self,
        session: &CustomerSession,
        old: String,
        new: &str,
    ) -> Result<(), CredentialError> {
        let card = session.card.as_str().to_owned();
        self.admit_card(&card).await?;
        let subject = self.store.sign_in_subject(&session.card).await?;
        let Some(subject) = subject.filter(|s| s.customer == session.customer) else {
            return Err(CredentialError::Refused);
        };
        let pin_ok = match &subject.password_hash {
            None => self.pin.matches(&session.card, &old, &subject.pin),
            Some(_) => {
                self.pin.matches_nothing(&card, &old);
                false
            }
        };
        let has_password = subject.password_hash.is_some();
        let password_ok = self.hasher.verify(subject.password_hash, old).await?;
        if !(if has_password { password_ok } else { pin_ok }) {
            return Err(self.failed(&card).await);
        }
        let new = NewPassword::parse(new).map_err(CredentialError::Weak)?;
        let hash = self.hasher.hash(new).await?;
        self.store
            .set_password(
                (&session.customer, &session.card),
                &hash,
                (&session.key, Level::Password.as_str()),
                Utc::now(),
                &self.service.policy,
            )
            .await?;
        tracing::info!(customer_id = %session.customer, "portal password set");
        Ok(())
    }

    /// Raises the session for [`STEP_UP`] when `password` is the customer's password.
    pub async fn step_up(
        &self,
        session: &CustomerSession,
        password: String,
    ) -> Result<(), CredentialError> {
        let card = session.card.as_str().to_owned();
        self.admit_card(&card).await?;
        let hash = self
            .store
            .sign_in_subject(&session.card)
            .await?
            .filter(|s| s.customer == session.customer)
            .and_then(|s| s.password_hash);
        self.pin.matches_nothing(&card, &password);
        if !self.hasher.verify(hash, password).await? {
            return Err(self.failed(&card).await);
        }
        self.sessions
            .raise(&session.key, Level::Password.as_str(), Some(STEP_UP))
            .await?;
        tracing::info!(customer_id = %session.customer, "portal session stepped up");
        Ok(())
    }

    /// Makes a code for `purpose` and queues its message to `to`.
    async fn send_code(
        &self,
        session: (&CustomerId, &CardNumber, Option<&str>),
        purpose: CodePurpose,
        (to, phone, language): (&PhoneNumber, Option<&PhoneNumber>, Language),
    ) -> Result<(), CodeError> {
        if !self.sms {
            return Err(CodeError::Unavailable);
        }
        let (customer, card, key) = session;
        let code = new_code();
        let text = code_text(language, &code);
        let (store, policy) = (self.store.clone(), self.service.policy);
        let work = Arc::new((
            *customer,
            card.clone(),
            key.map(str::to_owned),
            code,
            text,
            to.clone(),
            phone.cloned(),
        ));
        let sent = self
            .service
            .write("sms_code", move || {
                let (store, work) = (store.clone(), work.clone());
                async move {
                    let (customer, card, key, code, text, to, phone) = &*work;
                    let issued = IssuedCode {
                        purpose,
                        code,
                        session: key.as_deref(),
                        phone: phone.as_ref(),
                        to,
                        text,
                        expires_at: Utc::now() + chrono(CODE_TTL),
                    };
                    store
                        .issue_code((customer, card), &issued, Utc::now(), &policy)
                        .await
                }
            })
            .await
            .map_err(|e| CodeError::Failed(e.into()))?;
        if !sent {
            return Err(CodeError::TooSoon);
        }
        tracing::info!(customer_id = %customer, purpose = purpose.as_str(), "one-time code sent");
        Ok(())
    }

    /// The language the customer reads messages in.
    fn language_of(account: &Account, default: Language) -> Language {
        account
            .profile
            .get(ProfileField::PreferredLanguage)
            .and_then(Language::recognize)
            .unwrap_or(default)
    }

    /// Sends a step-up code to the phone on record.
    pub async fn send_step_up_code(
        &self,
        session: &CustomerSession,
        default: Language,
    ) -> Result<(), CodeError> {
        let account = self
            .store
            .account(&session.customer)
            .await
            .map_err(Failure::from)?
            .ok_or(CodeError::NoPhone)?;
        let phone = account.phone.clone().ok_or(CodeError::NoPhone)?;
        let language = Self::language_of(&account, default);
        self.send_code(
            (&session.customer, &session.card, Some(&session.key)),
            CodePurpose::StepUp,
            (&phone, None, language),
        )
        .await
    }

    /// Raises the session for [`STEP_UP`] with the code sent to it; a wrong code counts as a
    /// failed sign-in of the card.
    pub async fn step_up_with_code(
        &self,
        session: &CustomerSession,
        code: &str,
    ) -> Result<(), CredentialError> {
        let card = session.card.as_str().to_owned();
        self.admit_card(&card).await?;
        let check = self
            .store
            .take_code(
                &session.customer,
                CodePurpose::StepUp,
                Some(&session.key),
                code,
                (Utc::now(), CODE_TRIES),
            )
            .await?;
        if !matches!(check, CodeCheck::Valid { .. }) {
            return Err(self.failed(&card).await);
        }
        self.sessions
            .raise(&session.key, Level::Password.as_str(), Some(STEP_UP))
            .await?;
        tracing::info!(customer_id = %session.customer, "portal session stepped up by SMS code");
        Ok(())
    }

    /// Sends a code to `phone`, the number the customer wants: confirming it applies it.
    pub async fn request_phone_change(
        &self,
        session: &CustomerSession,
        phone: PhoneNumber,
        default: Language,
    ) -> Result<(), CodeError> {
        let account = self
            .store
            .account(&session.customer)
            .await
            .map_err(Failure::from)?
            .ok_or(CodeError::NoPhone)?;
        let language = Self::language_of(&account, default);
        self.send_code(
            (&session.customer, &session.card, Some(&session.key)),
            CodePurpose::Phone,
            (&phone, Some(&phone), language),
        )
        .await
    }

    /// Applies the number the code proves, exactly as ALCS's phone change does; `Ok(false)`
    /// when the code is not the one sent (or none is waiting).
    pub async fn confirm_phone(
        &self,
        session: &CustomerSession,
        code: &str,
    ) -> Result<bool, ApplyError> {
        let card = session.card.as_str();
        // Wrong codes count as failed sign-ins of the card, as a wrong step-up code does.
        if let Err(e) = self.admit_card(card).await {
            return Err(match e {
                CredentialError::Failed(e) => ApplyError::Failed(e),
                CredentialError::Throttled(wait) => {
                    ApplyError::Refused(Refusal::TooManyAttempts { retry_after: wait })
                }
                _ => ApplyError::Refused(Refusal::TooManyAttempts {
                    retry_after: self.limits.first_delay,
                }),
            });
        }
        let check = self
            .store
            .take_code(
                &session.customer,
                CodePurpose::Phone,
                Some(&session.key),
                code,
                (Utc::now(), CODE_TRIES),
            )
            .await
            .map_err(|e| ApplyError::Failed(e.into()))?;
        let CodeCheck::Valid { phone: Some(phone) } = check else {
            if let CredentialError::Failed(e) = self.failed(card).await {
                return Err(ApplyError::Failed(e));
            }
            return Ok(false);
        };
        self.service
            .apply_as(
                session.card.clone(),
                CardCommand::ChangePhone { phone },
                Actor::Customer(session.customer),
            )
            .await?;
        Ok(true)
    }

    /// Sends a reset code to the phone on record of `card`, if it has a customer who may sign
    /// in. The caller learns nothing of which: the work is done after it has its answer.
    pub async fn request_reset(
        &self,
        card: Result<CardNumber, String>,
        default: Language,
    ) -> Result<(), CredentialError> {
        if !self.sms {
            return Err(CredentialError::Unavailable);
        }
        let Ok(card) = card else {
            return Ok(());
        };
        self.admit_reset(card.as_str()).await?;
        let portal = self.clone();
        tokio::spawn(async move {
            let subject = match portal.store.sign_in_subject(&card).await {
                Ok(Some(s)) if s.card_status != CardStatus::Locked && !s.erased => s,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %crate::error_chain(&e), "password reset code not sent");
                    return;
                }
            };
            let Ok(Some(account)) = portal.store.account(&subject.customer).await else {
                return;
            };
            let Some(phone) = account.phone.clone() else {
                return;
            };
            let language = Self::language_of(&account, default);
            if let Err(e) = portal
                .send_code(
                    (&subject.customer, &card, None),
                    CodePurpose::Reset,
                    (&phone, None, language),
                )
                .await
            {
                tracing::warn!(error = %crate::error_chain(&e), "password reset code not sent");
            }
        });
        Ok(())
    }

    /// Sets a new password with the reset code sent to the phone on record: every session
    /// ends, and the card's failed sign-ins are forgotten (the reset reopens a locked sign-in).
    pub async fn reset_password(
        &self,
        card: Result<CardNumber, String>,
        code: &str,
        new: &str,
    ) -> Result<(), CredentialError> {
        let Ok(card) = card else {
            return Err(CredentialError::Refused);
        };
        self.admit_reset(card.as_str()).await?;
        let new = NewPassword::parse(new).map_err(CredentialError::Weak)?;
        let subject = self
            .store
            .sign_in_subject(&card)
            .await?
            .filter(|s| s.card_status != CardStatus::Locked && !s.erased);
        // A card with no such customer is checked against a stand-in: the same work, no row.
        let customer = subject
            .as_ref()
            .map_or_else(CustomerId::generate, |s| s.customer);
        let check = self
            .store
            .take_code(
                &customer,
                CodePurpose::Reset,
                None,
                code,
                (Utc::now(), CODE_TRIES),
            )
            .await?;
        let (Some(subject), CodeCheck::Valid { .. }) = (subject, check) else {
            return Err(self.failed(card.as_str()).await);
        };
        let hash = self.hasher.hash(new).await?;
        // No session is kept: every one of the customer's ends.
        self.store
            .set_password(
                (&subject.customer, &card),
                &hash,
                ("", Level::Password.as_str()),
                Utc::now(),
                &self.service.policy,
            )
            .await?;
        self.store.clear_sign_in_failures(card.as_str()).await?;
        tracing::info!(customer_id = %subject.customer, "portal password reset by SMS code");
        Ok(())
    }

    /// The customer's sessions in force, newest first.
    pub async fn sessions_of(&self, customer: &CustomerId) -> Result<Vec<Session>, Failure> {
        self.sessions.of(&customer.to_string()).await
    }

    /// Clears the failed sign-ins of a card number (the desk); whether it had any.
    pub async fn clear_failures(&self, card: &CardNumber) -> Result<bool, Failure> {
        Ok(self.store.clear_sign_in_failures(card.as_str()).await?)
    }
}

fn read_session(session: Session) -> Option<CustomerSession> {
    Some(CustomerSession {
        customer: CustomerId::parse(&session.holder).ok()?,
        card: CardNumber::parse(&session.credential).ok()?,
        level: Level::parse(&session.level)?,
        public_id: session.public_id,
        elevated_until: session.elevated_until,
        key: session.key,
    })
}
