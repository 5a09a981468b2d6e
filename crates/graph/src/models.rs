//! Every Graph resource shape pbx365 reads and writes (only the fields it uses), from the
//! endpoint module that owns it, in one place for callers that use many.
//!
//! Shapes: https://learn.microsoft.com/graph/api/resources/user , …/contact , …/event ,
//! …/subscription , …/profilephoto , https://learn.microsoft.com/graph/api/calendar-getschedule .

pub use crate::endpoints::calendar::{
    DateTimeTimeZone, Event, FreeBusyError, ScheduleInformation, ScheduleItem,
};
pub use crate::endpoints::contacts::{Contact, ContactFolder, PhysicalAddress};
pub use crate::endpoints::groups::{DirectoryObject, Group};
pub use crate::endpoints::mail::{
    EmailAddress, FileAttachment, InternetMessageHeader, ItemBody, MailMessage, Recipient,
    SenderCheck,
};
pub use crate::endpoints::photos::{Photo, PhotoMeta, PhotoValue};
pub use crate::endpoints::subscriptions::{NewSubscription, Subscription};
pub use crate::endpoints::users::{GraphUser, UserChange, USER_SELECT};
pub use crate::transport::{ODataPage, Removed};
