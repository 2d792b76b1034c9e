//! Who is asking: an authenticated account, however it signed in (an API
//! token, a browser session, the command line). Interfaces authenticate;
//! the application layer only reads who the caller is.

use crate::access::Role;
use sportello_domain::{AccountId, NetworkId, OrganizationId};
use uuid::Uuid;

/// The account making a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The account.
    pub account_id: AccountId,
    /// Its network (the tenant every query is limited to).
    pub network_id: NetworkId,
    /// Its organisation.
    pub organization_id: OrganizationId,
    /// Its role.
    pub role: Role,
    /// For a professional: their entry of the registry.
    pub professional_id: Option<Uuid>,
}
