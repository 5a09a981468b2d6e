//! Phonebooks: the company phonebook and each extension's personal one, with several typed
//! numbers per entry. Local entries are editable; synced ones are read-only.

use crate::{App, AppError, Missing};
use pbx365_domain::error::{check_email, check_len};
use pbx365_domain::extension::MAX_FIELD_LEN;
use pbx365_domain::phonebook::check_dialable;
use pbx365_domain::{PhoneKind, PhoneNumber, PhonebookEntry, PhonebookOwner, ValidationError};
use serde::Deserialize;

/// One number of an entry as a client writes it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberInput {
    /// `business`, `mobile`, `home` or `other`.
    pub kind: PhoneKind,
    /// The number as written; it is also normalised to E.164.
    pub number: String,
}

/// Body of creating or replacing a local phonebook entry.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// Shown name; derived from first and last name (or company) when empty.
    #[serde(default)]
    pub display_name: String,
    /// Given name.
    #[serde(default)]
    pub first_name: String,
    /// Surname.
    #[serde(default)]
    pub last_name: String,
    /// Company.
    pub company: Option<String>,
    /// Mail addresses.
    #[serde(default)]
    pub emails: Vec<String>,
    /// Phone numbers.
    #[serde(default)]
    pub numbers: Vec<NumberInput>,
}

impl EntryInput {
    /// Checks every field and builds the entry (numbers normalised with `default_country`).
    fn into_entry(
        self,
        id: String,
        owner: PhonebookOwner,
        default_country: &str,
    ) -> Result<PhonebookEntry, AppError> {
        let first_name = self.first_name.trim().to_string();
        let last_name = self.last_name.trim().to_string();
        let company = self
            .company
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        let mut display_name = self.display_name.trim().to_string();
        if display_name.is_empty() {
            display_name = format!("{first_name} {last_name}").trim().to_string();
        }
        if display_name.is_empty() {
            display_name = company.clone().unwrap_or_default();
        }
        if display_name.is_empty() {
            return Err(
                ValidationError::Empty("display name (or first/last name or company)").into(),
            );
        }
        check_len("display name", &display_name, MAX_FIELD_LEN)?;
        check_len("first name", &first_name, MAX_FIELD_LEN)?;
        check_len("last name", &last_name, MAX_FIELD_LEN)?;
        if let Some(c) = &company {
            check_len("company", c, MAX_FIELD_LEN)?;
        }
        if self.emails.len() > 20 || self.numbers.len() > 20 {
            return Err(AppError::Invalid(
                "an entry holds at most 20 mail addresses and 20 numbers".into(),
            ));
        }
        let mut emails = Vec::new();
        for e in self.emails {
            let e = e.trim().to_string();
            check_email(&e)?;
            emails.push(e);
        }
        let mut numbers = Vec::new();
        for n in self.numbers {
            check_dialable(&n.number)?;
            numbers.push(PhoneNumber::new(n.kind, &n.number, default_country));
        }
        if numbers.is_empty() && emails.is_empty() {
            return Err(AppError::Invalid(
                "a phonebook entry needs at least one number or mail address".into(),
            ));
        }
        Ok(PhonebookEntry {
            id,
            owner,
            m365_id: None,
            job_title: None,
            mailbox: None,
            no_number: false,
            display_name,
            first_name,
            last_name,
            company,
            emails,
            numbers,
        })
    }
}

impl App {
    /// The phonebook of `owner` ordered by name.
    pub async fn phonebook(&self, owner: &PhonebookOwner) -> Result<Vec<PhonebookEntry>, AppError> {
        Ok(self.store.list_phonebook(owner).await?)
    }

    /// The owner of extension `number`'s personal phonebook (the extension must exist).
    pub async fn personal_phonebook(&self, number: &str) -> Result<PhonebookOwner, AppError> {
        self.extension(number).await?;
        Ok(PhonebookOwner::Personal(number.to_string()))
    }

    async fn local_entry(
        &self,
        owner: &PhonebookOwner,
        id: &str,
    ) -> Result<PhonebookEntry, AppError> {
        let entry = self
            .phonebook(owner)
            .await?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| {
                AppError::not_found(
                    Missing::PhonebookEntry,
                    format!(
                        "phonebook entry '{}' does not exist",
                        id.chars().take(64).collect::<String>()
                    ),
                )
            })?;
        if entry.m365_id.is_some() {
            return Err(ValidationError::ReadOnlySynced("this phonebook entry").into());
        }
        Ok(entry)
    }

    /// Adds a local entry to `owner`'s phonebook (numbers normalised with
    /// `contacts.default_country`).
    pub async fn create_phonebook_entry(
        &self,
        actor: &str,
        owner: PhonebookOwner,
        input: EntryInput,
    ) -> Result<PhonebookEntry, AppError> {
        let country = self.settings().contacts.default_country.clone();
        let entry = input.into_entry(String::new(), owner, &country)?;
        let created = self.store.create_phonebook_entry(&entry).await?;
        self.audit(
            actor,
            "phonebook.create",
            &created.id,
            &created.display_name,
        )
        .await;
        Ok(created)
    }

    /// Replaces a local entry; synced entries are refused.
    pub async fn update_phonebook_entry(
        &self,
        actor: &str,
        owner: PhonebookOwner,
        id: &str,
        input: EntryInput,
    ) -> Result<PhonebookEntry, AppError> {
        self.local_entry(&owner, id).await?;
        let country = self.settings().contacts.default_country.clone();
        let entry = input.into_entry(id.to_string(), owner, &country)?;
        let updated = self.store.update_phonebook_entry(&entry).await?;
        self.audit(actor, "phonebook.update", id, &updated.display_name)
            .await;
        Ok(updated)
    }

    /// Deletes a local entry; synced entries are refused.
    pub async fn delete_phonebook_entry(
        &self,
        actor: &str,
        owner: PhonebookOwner,
        id: &str,
    ) -> Result<(), AppError> {
        let entry = self.local_entry(&owner, id).await?;
        self.store.delete_phonebook_entry(&owner, id).await?;
        self.audit(actor, "phonebook.delete", id, &entry.display_name)
            .await;
        Ok(())
    }
}
