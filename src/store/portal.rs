//! What the customer portal needs of the store: the sign-in look-up (a card's status, PIN HMAC
//! and customer, with the web password once set), the failures per submitted card number that
//! throttle sign-ins (shared by every instance), and the password's own write: a transaction
//! script like `script.rs`'s, recording its audit entry through the same [`WritePolicy`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::ops::{SqlStore, end};
use super::rows;
use super::script::{Application, Step, lock_card, record_write, refused};
use super::sql::{Conn, Time, sql};
use super::{Context, Outcome, StoreError, Write, WriteKind, WritePolicy};
use crate::domain::{
    Actor, Applied, CardNumber, CardStatus, Channel, CodePurpose, ConsentCommand, Consents,
    CustomerId, CustomerStatus, ExpectedVersion, Gender, Language, PhoneNumber, PinHmac, Profile,
    ProfileChange, ProfileField, Refusal, RuleError,
};

/// A card as the portal signs its customer in with it.
#[derive(Debug, Clone)]
pub struct SignInSubject {
    pub customer: CustomerId,
    pub card_status: CardStatus,
    pub pin: PinHmac,
    pub erased: bool,
    /// The web password's Argon2id hash (PHC string), once the customer set one.
    pub password_hash: Option<String>,
}

/// The failures of one submitted card number in a row, and when the last was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub count: i64,
    pub last: DateTime<Utc>,
}

#[async_trait]
pub trait PortalStore: Send + Sync + 'static {
    async fn sign_in_subject(&self, card: &CardNumber)
    -> Result<Option<SignInSubject>, StoreError>;

    /// The failures of the submitted card number `card` (any text a client sent as one).
    async fn sign_in_failures(&self, card: &str) -> Result<Option<Failures>, StoreError>;

    /// Counts one more failure of `card` at `at`; how many in a row it has now.
    async fn record_sign_in_failure(
        &self,
        card: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// Forgets the failures of `card` (a success, the desk); whether it had any.
    async fn clear_sign_in_failures(&self, card: &str) -> Result<bool, StoreError>;

    /// How many card numbers failed to sign in since `since` (the service-wide breaker).
    async fn failing_card_numbers(&self, since: DateTime<Utc>) -> Result<i64, StoreError>;

    /// The customer as the portal shows it.
    async fn account(&self, customer: &CustomerId) -> Result<Option<Account>, StoreError>;

    /// Applies `change` to the customer's profile when its version is one `expected` admits,
    /// signed in with `card` (whose record the cache is given).
    async fn change_profile(
        &self,
        (customer, card): (&CustomerId, &CardNumber),
        expected: &ExpectedVersion,
        change: &ProfileChange,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError>;

    /// Gives or withdraws a consent, or the objection, recording its event with `proof`.
    async fn change_consent(
        &self,
        (customer, card): (&CustomerId, &CardNumber),
        command: &ConsentCommand,
        proof: &Proof,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError>;

    /// Makes a one-time code (replacing the customer's earlier one for the same purpose) and
    /// queues its text message, in one transaction; `false` (nothing done) when the earlier
    /// one is younger than [`CODE_EVERY`] or the customer was erased.
    async fn issue_code(
        &self,
        (customer, card): (&CustomerId, &CardNumber),
        code: &IssuedCode<'_>,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<bool>, StoreError>;

    /// Uses the customer's code for `purpose` (asked in `session`, when it is bound to one):
    /// a right code is used up, a wrong one counts a try (and is gone after `max_tries`).
    async fn take_code(
        &self,
        customer: &CustomerId,
        purpose: CodePurpose,
        session: Option<&str>,
        code: &str,
        (at, max_tries): (DateTime<Utc>, i64),
    ) -> Result<CodeCheck, StoreError>;

    /// Every consent event of the customer, oldest first.
    async fn consent_events(&self, customer: &CustomerId) -> Result<Vec<ConsentEvent>, StoreError>;

    /// Forgets the failed sign-ins of the registered `card` for `actor` (the desk), with an
    /// audit entry; whether it had any (`Err`: no such card).
    async fn clear_sign_in_lock(
        &self,
        card: &CardNumber,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Result<bool, Refusal>, StoreError>;

    /// Sets the customer's web password to `hash`, signed in with `card` in the session
    /// `session` (its id's hash, and the level it is raised to): every other portal session
    /// of the customer ends.
    async fn set_password(
        &self,
        (customer, card): (&CustomerId, &CardNumber),
        hash: &str,
        session: (&str, &str),
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<(), StoreError>;
}

/// A customer as the portal shows it: status, contact, profile, consents, version.
#[derive(Debug, Clone)]
pub struct Account {
    pub status: CustomerStatus,
    pub phone: Option<PhoneNumber>,
    pub gender: Gender,
    pub profile: Profile,
    pub consents: Consents,
    pub objected_at: Option<DateTime<Utc>>,
    /// Bumped by every change of the customer: the portal's `ETag`.
    pub version: i64,
    pub erased: bool,
}

/// Who made a consent change, through what, and by which request: the event's proof.
#[derive(Debug, Clone)]
pub struct Proof {
    pub channel: Channel,
    pub actor: Actor,
    pub request_id: Option<String>,
    /// The language the text was shown in.
    pub language: Option<Language>,
}

/// At most one code per customer and purpose this often: a text message costs the operator
/// money and reaches a phone, and a new code replaces the one the customer is typing.
pub const CODE_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// A one-time code as made: the hash of its value (never the value), and the message.
/// `Debug` shows neither the code nor the text.
#[derive(Clone)]
pub struct IssuedCode<'a> {
    pub purpose: CodePurpose,
    /// The code itself: hashed here with a new salt, and sent in `text`.
    pub code: &'a str,
    pub session: Option<&'a str>,
    /// The new number a phone code proves.
    pub phone: Option<&'a PhoneNumber>,
    /// Where the message goes, and what it says.
    pub to: &'a PhoneNumber,
    pub text: &'a str,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedCode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCode")
            .field("purpose", &self.purpose)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a code was found to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right, and now used up; the new number a phone code proves.
    Valid {
        phone: Option<PhoneNumber>,
    },
    Wrong,
    /// None asked (or it expired, was used, or tried too often).
    Missing,
}

fn code_hash(salt: &str, code: &str) -> String {
    crate::secret::hash_hex(&format!("{salt}{code}"))
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    code_hash: String,
    salt: String,
    session_hash: Option<String>,
    phone_number: Option<String>,
    attempts: i64,
    expires_at: Time,
}

/// A consent event as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsentEvent {
    pub id: i64,
    pub purpose: Option<String>,
    pub action: String,
    pub text_version: Option<String>,
    pub text_sha256: Option<String>,
    pub language: Option<String>,
    pub channel: String,
    pub actor: String,
    #[sqlx(try_from = "Time")]
    pub occurred_at: DateTime<Utc>,
    pub request_id: Option<String>,
}

/// The profile's columns, in [`ProfileField::ALL`]'s order.
fn profile_columns() -> String {
    ProfileField::ALL.map(ProfileField::column).join(", ")
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    status: String,
    phone_number: Option<String>,
    gender: String,
    version: i64,
    erased_at: Option<Time>,
    consents: String,
    objected_at: Option<Time>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    street: Option<String>,
    house_number: Option<String>,
    apartment_number: Option<String>,
    postal_code: Option<String>,
    city: Option<String>,
    date_of_birth: Option<String>,
    preferred_language: Option<String>,
    preferred_store: Option<String>,
}

impl AccountRow {
    fn into_account(self) -> Result<Account, StoreError> {
        let values = [
            self.first_name,
            self.last_name,
            self.email,
            self.street,
            self.house_number,
            self.apartment_number,
            self.postal_code,
            self.city,
            self.date_of_birth,
            self.preferred_language,
            self.preferred_store,
        ];
        let profile = ProfileField::ALL
            .into_iter()
            .zip(values)
            .filter_map(|(f, v)| v.map(|v| (f, v)))
            .collect();
        Ok(Account {
            status: rows::status(&self.status)?,
            phone: self.phone_number.map(PhoneNumber::from_stored),
            gender: rows::gender(&self.gender)?,
            profile: Profile(profile),
            consents: Consents::from_stored(&self.consents, self.objected_at.is_some()),
            objected_at: self.objected_at.map(Into::into),
            version: self.version,
            erased: self.erased_at.is_some(),
        })
    }
}

fn account_query(lock: bool) -> String {
    format!(
        "select status, phone_number, gender, version, erased_at, consents, objected_at, {}
         from customers where id = $1{}",
        profile_columns(),
        if lock { "\n         for update" } else { "" }
    )
}

#[derive(sqlx::FromRow)]
struct SubjectRow {
    customer_id: String,
    status: String,
    pin_hmac: String,
    erased_at: Option<Time>,
    secret_hash: Option<String>,
}

#[derive(sqlx::FromRow)]
struct FailuresRow {
    failures: i64,
    last_failed_at: Time,
}

#[async_trait]
impl PortalStore for SqlStore {
    async fn sign_in_subject(
        &self,
        card: &CardNumber,
    ) -> Result<Option<SignInSubject>, StoreError> {
        let find = sql(
            "select c.customer_id, c.status, c.pin_hmac, u.erased_at, p.secret_hash
             from cards c join customers u on u.id = c.customer_id
             left join web_credentials p on p.customer_id = c.customer_id
             where c.card_number = $1",
        )
        .bind(card.as_str());
        let found: Vec<SubjectRow> = self.db().read_all(&find, "look up a sign-in").await?;
        let Some(row) = found.into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(SignInSubject {
            customer: rows::customer_id(&row.customer_id)?,
            card_status: rows::status(&row.status)?,
            // Stored as registered, which parsed it.
            pin: PinHmac::parse(&row.pin_hmac)
                .map_err(|e| StoreError::failed("read a card's PIN HMAC", e))?,
            erased: row.erased_at.is_some(),
            password_hash: row.secret_hash,
        }))
    }

    async fn sign_in_failures(&self, card: &str) -> Result<Option<Failures>, StoreError> {
        let find = sql("select failures, last_failed_at from sign_in_failures
             where card_number = $1")
        .bind(card);
        let found: Vec<FailuresRow> = self.db().read_all(&find, "read failed sign-ins").await?;
        Ok(found.into_iter().next().map(|row| Failures {
            count: row.failures,
            last: row.last_failed_at.into(),
        }))
    }

    async fn record_sign_in_failure(
        &self,
        card: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let count = sql(
            "insert into sign_in_failures (card_number, failures, last_failed_at)
             values ($1, 1, $2)
             on conflict (card_number) do update
                set failures = sign_in_failures.failures + 1,
                    last_failed_at = excluded.last_failed_at
             returning failures",
        )
        .bind(card)
        .bind(at);
        let counted: Vec<(i64,)> = self
            .db()
            .write_all(&count, "count a failed sign-in")
            .await?;
        Ok(counted.first().map_or(1, |(n,)| *n))
    }

    async fn clear_sign_in_failures(&self, card: &str) -> Result<bool, StoreError> {
        let clear = sql("delete from sign_in_failures where card_number = $1").bind(card);
        Ok(self.db().execute(&clear, "forget failed sign-ins").await? > 0)
    }

    async fn failing_card_numbers(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        let count =
            sql("select count(*) from sign_in_failures where last_failed_at > $1").bind(since);
        let counted: Vec<(i64,)> = self
            .db()
            .read_all(&count, "count failing card numbers")
            .await?;
        Ok(counted.first().map_or(0, |(n,)| *n))
    }

    async fn account(&self, customer: &CustomerId) -> Result<Option<Account>, StoreError> {
        let find = sql(account_query(false)).bind(customer.to_string());
        let found: Vec<AccountRow> = self.db().read_all(&find, "read a customer").await?;
        found
            .into_iter()
            .next()
            .map(AccountRow::into_account)
            .transpose()
    }

    async fn change_profile(
        &self,
        (customer, card): (&CustomerId, &CardNumber),
        expected: &ExpectedVersion,
        change: &ProfileChange,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError> {
        let mut tx = self.db().begin().await?;
        let step = change_profile(
            &mut tx.conn(),
            (customer, card),
            expected,
            change,
            actor,
            at,
            policy,
        )
        .await;
        let (result, effects) = end(self.db(), tx, step).await?;
        Ok(Outcome { result, effects })
    }

    async fn change_consent(
        &self,
        (customer, card): (&CustomerId, &CardNumber),
        command: &ConsentCommand,
        proof: &Proof,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError> {
        let mut tx = self.db().begin().await?;
        let step =
            change_consent(&mut tx.conn(), (customer, card), command, proof, at, policy).await;
        let (result, effects) = end(self.db(), tx, step).await?;
        Ok(Outcome { result, effects })
    }

    async fn issue_code(
        &self,
        (customer, card): (&CustomerId, &CardNumber),
        code: &IssuedCode<'_>,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<bool>, StoreError> {
        let mut tx = self.db().begin().await?;
        let step = issue_code(&mut tx.conn(), (customer, card), code, at, policy).await;
        let (result, effects) = end(self.db(), tx, step).await?;
        Ok(Outcome { result, effects })
    }

    async fn take_code(
        &self,
        customer: &CustomerId,
        purpose: CodePurpose,
        session: Option<&str>,
        code: &str,
        (at, max_tries): (DateTime<Utc>, i64),
    ) -> Result<CodeCheck, StoreError> {
        let mut tx = self.db().begin().await?;
        let step = take_code(
            &mut tx.conn(),
            customer,
            purpose,
            session,
            code,
            (at, max_tries),
        )
        .await;
        end(self.db(), tx, step).await
    }

    async fn consent_events(&self, customer: &CustomerId) -> Result<Vec<ConsentEvent>, StoreError> {
        let list = sql(
            "select id, purpose, action, text_version, text_sha256, language, channel,
                    actor, occurred_at, request_id
             from consent_events where customer_id = $1 order by id",
        )
        .bind(customer.to_string());
        self.db().read_all(&list, "read the consent history").await
    }

    async fn clear_sign_in_lock(
        &self,
        card: &CardNumber,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Result<bool, Refusal>, StoreError> {
        let mut tx = self.db().begin().await?;
        let step = clear_sign_in_lock(&mut tx.conn(), card, actor, at, policy).await;
        end(self.db(), tx, step).await
    }

    async fn set_password(
        &self,
        (customer, card): (&CustomerId, &CardNumber),
        hash: &str,
        session: (&str, &str),
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<(), StoreError> {
        let mut tx = self.db().begin().await?;
        let step = set_password(&mut tx.conn(), (customer, card), hash, session, at, policy).await;
        end(self.db(), tx, step).await
    }
}

/// The customer locked for a change, or the refusal when it cannot be changed.
async fn lock_account(
    tx: &mut Conn<'_>,
    customer: &CustomerId,
) -> Result<Result<Account, Refusal>, StoreError> {
    let row: Option<AccountRow> = sql(account_query(true))
        .bind(customer.to_string())
        .fetch_optional(tx)
        .await
        .context("lock the customer")?;
    let Some(account) = row.map(AccountRow::into_account).transpose()? else {
        return Ok(Err(Refusal::CustomerNotFound));
    };
    if account.erased {
        return Ok(Err(Refusal::Rule(RuleError::CustomerErased)));
    }
    Ok(Ok(account))
}

#[allow(clippy::too_many_arguments)] // one transaction's inputs, each used once
async fn change_profile(
    tx: &mut Conn<'_>,
    (customer, card): (&CustomerId, &CardNumber),
    expected: &ExpectedVersion,
    change: &ProfileChange,
    actor: &Actor,
    at: DateTime<Utc>,
    policy: &dyn WritePolicy,
) -> Result<Step<Application>, StoreError> {
    let account = match lock_account(tx, customer).await? {
        Ok(account) => account,
        Err(refusal) => return refused(refusal),
    };
    if !expected.admits(account.version) {
        return refused(Refusal::Rule(RuleError::VersionMismatch));
    }
    // Only what differs is written (and audited).
    let changed: Vec<&(ProfileField, Option<String>)> = change
        .0
        .iter()
        .filter(|(field, value)| account.profile.get(*field) != value.as_deref())
        .collect();
    if changed.is_empty() {
        return Ok(Step::Discard((Ok(Applied::Unchanged), Vec::new())));
    }
    // The columns are the fields' own names, never the client's text.
    let sets: Vec<String> = changed
        .iter()
        .enumerate()
        .map(|(i, (field, _))| format!("{} = ${}", field.column(), i + 1))
        .collect();
    let n = changed.len();
    let mut update = sql(format!(
        "update customers set {}, version = version + 1, updated_at = ${} where id = ${}",
        sets.join(", "),
        n + 1,
        n + 2
    ));
    for (_, value) in &changed {
        update = update.bind(value.as_deref());
    }
    update
        .bind(at)
        .bind(customer.to_string())
        .execute(tx)
        .await
        .context("update the profile")?;
    let fields: Vec<ProfileField> = changed.iter().map(|(f, _)| *f).collect();
    let write = Write {
        customer: *customer,
        at,
        actor,
        kind: WriteKind::ProfileChanged {
            card,
            fields: &fields,
        },
    };
    let effects = record_write(tx, &write, policy).await?;
    Ok(Step::Commit((Ok(Applied::Changed), effects)))
}

async fn change_consent(
    tx: &mut Conn<'_>,
    (customer, card): (&CustomerId, &CardNumber),
    command: &ConsentCommand,
    proof: &Proof,
    at: DateTime<Utc>,
    policy: &dyn WritePolicy,
) -> Result<Step<Application>, StoreError> {
    let account = match lock_account(tx, customer).await? {
        Ok(account) => account,
        Err(refusal) => return refused(refusal),
    };
    let Some(action) = command.decide(&account.consents) else {
        return Ok(Step::Discard((Ok(Applied::Unchanged), Vec::new())));
    };
    let after = command.apply(account.consents.clone());
    let (purpose, text) = match command {
        ConsentCommand::Give(text) => (Some(text.purpose.as_str()), Some(text)),
        ConsentCommand::Withdraw(purpose) => (Some(purpose.as_str()), None),
        ConsentCommand::Object | ConsentCommand::WithdrawObjection => (None, None),
    };
    // The text given on, or, for a withdrawal, the one the consent had been given on.
    let version = match (text, purpose) {
        (Some(text), _) => Some(text.version.clone()),
        (None, Some(p)) => account
            .consents
            .given
            .iter()
            .find(|(given, _)| given.as_str() == p)
            .map(|(_, v)| v.clone()),
        (None, None) => None,
    };
    sql(
        "insert into consent_events (customer_id, purpose, action, text_version, text_sha256,
             language, channel, actor, occurred_at, request_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(customer.to_string())
    .bind(purpose)
    .bind(action.as_str())
    .bind(version)
    .bind(text.map(|t| t.sha256.as_str()))
    .bind(
        text.map(|t| t.language.code())
            .or(proof.language.map(Language::code)),
    )
    .bind(proof.channel.as_str())
    .bind(proof.actor.audit_name().unwrap_or("alcs"))
    .bind(at)
    .bind(proof.request_id.as_deref())
    .execute(tx)
    .await
    .context("record the consent event")?;
    let update = match (account.consents.objected, after.objected) {
        (false, true) => sql("update customers set consents = $1, objected_at = $2,
                 version = version + 1, updated_at = $2 where id = $3")
        .bind(after.stored())
        .bind(at),
        (true, false) => sql("update customers set consents = $1, objected_at = null,
                 version = version + 1, updated_at = $2 where id = $3")
        .bind(after.stored())
        .bind(at),
        _ => sql("update customers set consents = $1,
                 version = version + 1, updated_at = $2 where id = $3")
        .bind(after.stored())
        .bind(at),
    };
    update
        .bind(customer.to_string())
        .execute(tx)
        .await
        .context("update the consents")?;
    let write = Write {
        customer: *customer,
        at,
        actor: &proof.actor,
        kind: WriteKind::ConsentChanged { card, action },
    };
    let effects = record_write(tx, &write, policy).await?;
    Ok(Step::Commit((Ok(Applied::Changed), effects)))
}

async fn issue_code(
    tx: &mut Conn<'_>,
    (customer, card): (&CustomerId, &CardNumber),
    code: &IssuedCode<'_>,
    at: DateTime<Utc>,
    policy: &dyn WritePolicy,
) -> Result<Step<(bool, Vec<crate::store::OutboxRow>)>, StoreError> {
    // Locked like any change of the customer: an erasure that committed first is seen.
    if lock_account(tx, customer).await?.is_err() {
        return Ok(Step::Discard((false, Vec::new())));
    }
    let earlier: Option<(Time,)> =
        sql("select created_at from sms_codes where customer_id = $1 and purpose = $2")
            .bind(customer.to_string())
            .bind(code.purpose.as_str())
            .fetch_optional(tx)
            .await
            .context("read the earlier code")?;
    if earlier.is_some_and(|(made,)| at - DateTime::<Utc>::from(made) < CODE_EVERY) {
        return Ok(Step::Discard((false, Vec::new())));
    }
    let salt = uuid::Uuid::new_v4().simple().to_string();
    sql("delete from sms_codes where customer_id = $1 and purpose = $2")
        .bind(customer.to_string())
        .bind(code.purpose.as_str())
        .execute(tx)
        .await
        .context("replace the earlier code")?;
    sql(
        "insert into sms_codes (customer_id, purpose, code_hash, salt, session_hash,
             phone_number, attempts, expires_at, created_at)
         values ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
    )
    .bind(customer.to_string())
    .bind(code.purpose.as_str())
    .bind(code_hash(&salt, code.code))
    .bind(salt.as_str())
    .bind(code.session)
    .bind(code.phone.map(PhoneNumber::as_str))
    .bind(code.expires_at)
    .bind(at)
    .execute(tx)
    .await
    .context("keep a one-time code")?;
    let write = Write {
        customer: *customer,
        at,
        actor: &Actor::Customer(*customer),
        kind: WriteKind::CodeIssued {
            card,
            purpose: code.purpose,
            to: code.to,
            text: code.text,
        },
    };
    let effects = record_write(tx, &write, policy).await?;
    Ok(Step::Commit((true, effects)))
}

async fn take_code(
    tx: &mut Conn<'_>,
    customer: &CustomerId,
    purpose: CodePurpose,
    session: Option<&str>,
    code: &str,
    (at, max_tries): (DateTime<Utc>, i64),
) -> Result<Step<CodeCheck>, StoreError> {
    let row: Option<CodeRow> = sql(
        "select code_hash, salt, session_hash, phone_number, attempts,
                expires_at
         from sms_codes where customer_id = $1 and purpose = $2
         for update",
    )
    .bind(customer.to_string())
    .bind(purpose.as_str())
    .fetch_optional(tx)
    .await
    .context("read a one-time code")?;
    let Some(row) = row else {
        return Ok(Step::Discard(CodeCheck::Missing));
    };
    let forget = sql("delete from sms_codes where customer_id = $1 and purpose = $2")
        .bind(customer.to_string())
        .bind(purpose.as_str());
    if DateTime::<Utc>::from(row.expires_at) <= at || row.session_hash.as_deref() != session {
        if DateTime::<Utc>::from(row.expires_at) <= at {
            forget.execute(tx).await.context("forget an expired code")?;
            return Ok(Step::Commit(CodeCheck::Missing));
        }
        return Ok(Step::Discard(CodeCheck::Missing));
    }
    let right = crate::secret::same_secret(
        code_hash(&row.salt, code).as_bytes(),
        row.code_hash.as_bytes(),
    );
    if right {
        forget.execute(tx).await.context("use up a code")?;
        return Ok(Step::Commit(CodeCheck::Valid {
            phone: row.phone_number.map(PhoneNumber::from_stored),
        }));
    }
    if row.attempts + 1 >= max_tries {
        forget
            .execute(tx)
            .await
            .context("forget a code tried too often")?;
    } else {
        sql("update sms_codes set attempts = attempts + 1 where customer_id = $1 and purpose = $2")
            .bind(customer.to_string())
            .bind(purpose.as_str())
            .execute(tx)
            .await
            .context("count a wrong code")?;
    }
    Ok(Step::Commit(CodeCheck::Wrong))
}

async fn clear_sign_in_lock(
    tx: &mut Conn<'_>,
    card: &CardNumber,
    actor: &Actor,
    at: DateTime<Utc>,
    policy: &dyn WritePolicy,
) -> Result<Step<Result<bool, Refusal>>, StoreError> {
    let Some(row) = lock_card(tx, card).await? else {
        return Ok(Step::Discard(Err(Refusal::CardNotFound)));
    };
    let cleared = sql("delete from sign_in_failures where card_number = $1")
        .bind(card.as_str())
        .execute(tx)
        .await
        .context("forget failed sign-ins")?;
    if cleared == 0 {
        return Ok(Step::Discard(Ok(false)));
    }
    let write = Write {
        customer: rows::customer_id(&row.customer_id)?,
        at,
        actor,
        kind: WriteKind::SignInCleared { card },
    };
    record_write(tx, &write, policy).await?;
    Ok(Step::Commit(Ok(true)))
}

async fn set_password(
    tx: &mut Conn<'_>,
    (customer, card): (&CustomerId, &CardNumber),
    hash: &str,
    (session, level): (&str, &str),
    at: DateTime<Utc>,
    policy: &dyn WritePolicy,
) -> Result<Step<()>, StoreError> {
    // An erasure that committed first is seen: an erased customer gets no credential back.
    if lock_account(tx, customer).await?.is_err() {
        return Ok(Step::Discard(()));
    }
    let id = customer.to_string();
    sql(
        "insert into web_credentials (customer_id, secret_hash, set_at) values ($1, $2, $3)
         on conflict (customer_id) do update
            set secret_hash = excluded.secret_hash, set_at = excluded.set_at",
    )
    .bind(id.as_str())
    .bind(hash)
    .bind(at)
    .execute(tx)
    .await
    .context("set the web credential")?;
    // A new password ends every other session: one opened by whoever knew the old one too.
    sql("delete from sessions where audience = 'portal' and holder = $1 and id_hash <> $2")
        .bind(id.as_str())
        .bind(session)
        .execute(tx)
        .await
        .context("end the other portal sessions")?;
    sql("update sessions set level = $1 where id_hash = $2")
        .bind(level)
        .bind(session)
        .execute(tx)
        .await
        .context("raise the session")?;
    let write = Write {
        customer: *customer,
        at,
        actor: &Actor::Customer(*customer),
        kind: WriteKind::PasswordSet { card },
    };
    record_write(tx, &write, policy).await?;
    Ok(Step::Commit(()))
}
