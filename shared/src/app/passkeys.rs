//! Passkeys (U11): a signed-in user enrols one in normal times; during an outage it signs them
//! in with no SMS and no identity provider. The WebAuthn ceremonies are `webauthn-rs`'s; the
//! relying party is the service's own site (its id the portal's host, its origin the portal's
//! base URL).
//!
//! - Enrolment: the browser gets a creation challenge asking for a discoverable credential
//!   (a passkey the authenticator can offer without being told whose); the ceremony's state is
//!   kept in the table ([`PasskeyStore::put_ceremony`]) and taken once when the browser answers.
//! - Sign-in is discoverable: the challenge names no user and no credential, so it tells nothing
//!   about who has a passkey; the answer names its credential, whose owner is then read, and the
//!   user must still be in the directory (their organisation comes from there).
//! - Enrolment and removal are audited (`passkey-enrol`, `passkey-remove`, `passkeys-revoke`).

use crate::app::continuity::{Continuity, Requester};
use crate::app::settings::change_record;
use crate::app::sign_in::{SignIn, SignInError};
use crate::domain::continuity::AuditRecord;
use crate::domain::sign_in::{Session, SignInMethod};
use crate::ports::error::StoreError;
use crate::ports::store::{PasskeyRecord, PasskeyStore};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, Webauthn,
};

/// A ceremony must be finished within this.
pub const CEREMONY_MINUTES: i64 = 5;
/// Most passkeys one user may have.
pub const MAX_PASSKEYS: usize = 10;

/// Why a passkey operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("The passkey request expired or was already used; start again.")]
    NoCeremony,
    #[error("The passkey answer did not verify: {0}")]
    Rejected(String),
    #[error("This passkey is not known here (it was removed, or belongs to another site).")]
    UnknownPasskey,
    #[error("This passkey is registered already.")]
    AlreadyRegistered,
    #[error("At most {MAX_PASSKEYS} passkeys per user; remove one first.")]
    TooMany,
    #[error("Your address is not in your organisation's user directory; ask your administrator to add you before you set up a passkey.")]
    NotInDirectory,
    #[error("No such passkey.")]
    NoSuchPasskey,
    #[error(transparent)]
    SignIn(#[from] SignInError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A ceremony's state as kept between the browser's two requests.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Ceremony {
    Register {
        org_id: String,
        address: String,
        label: String,
        state: PasskeyRegistration,
    },
    SignIn {
        state: DiscoverableAuthentication,
    },
}

/// The WebAuthn user handle of `address` in `org`: stable, and revealing neither.
pub fn user_handle(org_id: &str, address: &str) -> Uuid {
    let d = Sha256::digest(format!("webauthn-user/v1\0{org_id}\0{address}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    Uuid::from_bytes(b)
}

/// The passkeys use case's collaborators.
pub struct Passkeys<'a> {
    pub webauthn: &'a Webauthn,
    pub store: &'a dyn PasskeyStore,
    /// Sessions, and the directory lookup.
    pub sign_in: SignIn<'a>,
    /// The audit and the bus.
    pub continuity: Continuity<'a>,
}

fn rejected(e: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Rejected(e.to_string())
}

impl Passkeys<'_> {
    async fn keep(&self, c: &Ceremony, now: DateTime<Utc>) -> Result<String, PasskeyError> {
        let id = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
        let state = serde_json::to_string(c).map_err(rejected)?;
        self.store
            .put_ceremony(&id, &state, now + Duration::minutes(CEREMONY_MINUTES))
            .await?;
        Ok(id)
    }

    async fn take(&self, id: &str, now: DateTime<Utc>) -> Result<Ceremony, PasskeyError> {
        let state = self
            .store
            .take_ceremony(id, now)
            .await?
            .ok_or(PasskeyError::NoCeremony)?;
        serde_json::from_str(&state).map_err(|_| PasskeyError::NoCeremony)
    }

    /// Starts enrolling a passkey for the signed-in `address` of `org`: the creation options
    /// for the browser (`navigator.credentials.create`) and the ceremony's id.
    pub async fn start_enrolment(
        &self,
        org_id: &str,
        address: &str,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, Value), PasskeyError> {
        let (org, ctx) = self.sign_in.context(address).await?;
        let Some(user) = ctx.user.filter(|_| org == org_id) else {
            return Err(PasskeyError::NotInDirectory);
        };
        let existing = self.store.passkeys(org_id, address).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(PasskeyError::TooMany);
        }
        let exclude = existing
            .iter()
            .filter_map(|r| URL_SAFE_NO_PAD.decode(&r.credential_id).ok())
            .collect::<Vec<_>>();
        let display = user.name.clone().unwrap_or_else(|| address.to_string());
        let (ccr, state) = self
            .webauthn
            .start_passkey_registration(
                user_handle(org_id, address),
                address,
                &display,
                Some(exclude),
            )
            .map_err(rejected)?;
        // Discoverable: the sign-in names no user, so the authenticator must find the key
        // itself (webauthn-rs leaves this to the authenticator; passkeys are discoverable).
        let mut options = serde_json::to_value(ccr).map_err(rejected)?;
        if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection") {
            sel["residentKey"] = json!("required");
            sel["requireResidentKey"] = json!(true);
        }
        let label: String = label.trim().chars().take(60).collect();
        let id = self
            .keep(
                &Ceremony::Register {
                    org_id: org_id.to_string(),
                    address: address.to_string(),
                    label: if label.is_empty() {
                        "Passkey".into()
                    } else {
                        label
                    },
                    state,
                },
                now,
            )
            .await?;
        Ok((id, options))
    }

    /// Finishes an enrolment with the browser's answer; audited as `passkey-enrol`.
    pub async fn finish_enrolment(
        &self,
        org_id: &str,
        address: &str,
        ceremony: &str,
        answer: Value,
        by: &Requester,
        now: DateTime<Utc>,
    ) -> Result<PasskeyRecord, PasskeyError> {
        let Ceremony::Register {
            org_id: org,
            address: owner,
            label,
            state,
        } = self.take(ceremony, now).await?
        else {
            return Err(PasskeyError::NoCeremony);
        };
        if org != org_id || owner != address {
            return Err(PasskeyError::NoCeremony);
        }
        let answer: RegisterPublicKeyCredential =
            serde_json::from_value(answer).map_err(rejected)?;
        let passkey: Passkey = self
            .webauthn
            .finish_passkey_registration(&answer, &state)
            .map_err(rejected)?;
        let record = PasskeyRecord {
            org_id: org_id.to_string(),
            address: address.to_string(),
            credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
            passkey: serde_json::to_string(&passkey).map_err(rejected)?,
            label,
            created_at: now,
            last_used_at: None,
        };
        // The passkey and its audit record in one transaction (P7); the event after it.
        let audit = change_record(
            org_id,
            "passkey-enrol",
            by,
            now,
            json!({"user": address, "passkey": record.label, "credential": record.credential_id}),
        );
        if !self
            .store
            .add_passkey_audited(&record, Some(&audit))
            .await?
        {
            return Err(PasskeyError::AlreadyRegistered);
        }
        self.publish(&audit, &[]).await;
        Ok(record)
    }

    /// Starts a passkey sign-in: the request options for `navigator.credentials.get` (no user,
    /// no credential named) and the ceremony's id.
    pub async fn start_sign_in(&self, now: DateTime<Utc>) -> Result<(String, Value), PasskeyError> {
        let (mut rcr, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(rejected)?;
        // A button starts it (a modal prompt), not the address field's autofill.
        rcr.mediation = None;
        let id = self.keep(&Ceremony::SignIn { state }, now).await?;
        Ok((id, serde_json::to_value(rcr).map_err(rejected)?))
    }

    /// Finishes a passkey sign-in: the credential's owner, still in the directory, gets a
    /// session. The passkey's signature counter is kept.
    pub async fn finish_sign_in(
        &self,
        ceremony: &str,
        answer: Value,
        now: DateTime<Utc>,
    ) -> Result<(String, Session), PasskeyError> {
        let Ceremony::SignIn { state } = self.take(ceremony, now).await? else {
            return Err(PasskeyError::NoCeremony);
        };
        let answer: PublicKeyCredential = serde_json::from_value(answer).map_err(rejected)?;
        let (handle, cred_id) = self
            .webauthn
            .identify_discoverable_authentication(&answer)
            .map_err(rejected)?;
        let mut record = self
            .store
            .passkey(&URL_SAFE_NO_PAD.encode(cred_id))
            .await?
            .ok_or(PasskeyError::UnknownPasskey)?;
        if user_handle(&record.org_id, &record.address) != handle {
            return Err(PasskeyError::UnknownPasskey);
        }
        let mut passkey: Passkey = serde_json::from_str(&record.passkey).map_err(rejected)?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&answer, state, &passkey)
            .map_err(rejected)?;
        let (org, ctx) = self.sign_in.context(&record.address).await?;
        if org != record.org_id || ctx.user.is_none() {
            return Err(SignInError::NotAvailable.into());
        }
        if passkey.update_credential(&result) == Some(true) {
            record.passkey = serde_json::to_string(&passkey).map_err(rejected)?;
        }
        self.store.touch_passkey(&record, now).await?;
        Ok(self
            .sign_in
            .open_session(&record.org_id, &record.address, SignInMethod::Passkey, now)
            .await?)
    }

    /// The user's passkeys.
    pub async fn list(
        &self,
        org_id: &str,
        address: &str,
    ) -> Result<Vec<PasskeyRecord>, PasskeyError> {
        Ok(self.store.passkeys(org_id, address).await?)
    }

    /// Removes one of the user's passkeys; audited as `passkey-remove`.
    pub async fn remove(
        &self,
        org_id: &str,
        address: &str,
        credential_id: &str,
        by: &Requester,
        now: DateTime<Utc>,
    ) -> Result<(), PasskeyError> {
        let audit = change_record(
            org_id,
            "passkey-remove",
            by,
            now,
            json!({"user": address, "credential": credential_id}),
        );
        if !self
            .store
            .remove_passkey_audited(org_id, address, credential_id, Some(&audit))
            .await?
        {
            return Err(PasskeyError::NoSuchPasskey);
        }
        self.publish(&audit, &[]).await;
        Ok(())
    }

    /// An administrator revokes every passkey of `address` and ends every session the service
    /// opened for them (a lost phone keeps neither); audited as `passkeys-revoke`. How many
    /// passkeys there were, and how many sessions.
    pub async fn revoke_all(
        &self,
        org_id: &str,
        address: &str,
        by: &Requester,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), PasskeyError> {
        let all: Vec<String> = self
            .store
            .passkeys(org_id, address)
            .await?
            .into_iter()
            .map(|r| r.credential_id)
            .collect();
        // The passkeys go with the audit record, in one transaction (P7); the sessions are
        // ended after it, as the record says (a failure there leaves the revocation audited,
        // and the administrator's retry ends them, audited again).
        let audit = change_record(
            org_id,
            "passkeys-revoke",
            by,
            now,
            json!({"user": address, "passkeys": all.len(), "credentials": all, "sessions": "all"}),
        );
        self.store
            .remove_passkeys_audited(org_id, address, &all, &audit)
            .await?;
        let sessions = self
            .sign_in
            .store
            .end_user_sessions(org_id, address)
            .await?;
        self.publish(&audit, &[("sessions_ended", json!(sessions))])
            .await;
        Ok((all.len(), sessions))
    }

    /// Publishes a stored audit record as `PasskeysChanged` (at least once: a failure is
    /// logged, never undoes what was stored).
    async fn publish(&self, record: &AuditRecord, extra: &[(&str, Value)]) {
        self.continuity
            .publish(record, "PasskeysChanged", extra)
            .await;
    }
}
