//! The HubSpot-defined properties of contacts, companies, deals and tickets (a realistic
//! subset: the ones syncs and the seed use), with their types, groups and options.

use crate::properties::{Derived, PropType, PropertyDef, PropertyGroup, PropertyRegistry};
use crate::state::ObjectTypeId;

/// Contact lifecycle stages, in order.
pub const LIFECYCLE_STAGES: &[(&str, &str)] = &[
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
];

/// Lead statuses.
pub const LEAD_STATUSES: &[(&str, &str)] = &[
    ("NEW", "New"),
    ("OPEN", "Open"),
    ("IN_PROGRESS", "In Progress"),
    ("OPEN_DEAL", "Open Deal"),
    ("UNQUALIFIED", "Unqualified"),
    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
    ("CONNECTED", "Connected"),
    ("BAD_TIMING", "Bad Timing"),
];

/// Company industries (a subset of HubSpot's list).
pub const INDUSTRIES: &[(&str, &str)] = &[
    ("ACCOUNTING", "Accounting"),
    ("COMPUTER_SOFTWARE", "Computer Software"),
    ("CONSTRUCTION", "Construction"),
    ("FINANCIAL_SERVICES", "Financial Services"),
    ("HOSPITAL_HEALTH_CARE", "Hospital & Health Care"),
    (
        "INFORMATION_TECHNOLOGY_AND_SERVICES",
        "Information Technology and Services",
    ),
    ("MARKETING_AND_ADVERTISING", "Marketing and Advertising"),
    ("RETAIL", "Retail"),
    ("LOGISTICS_AND_SUPPLY_CHAIN", "Logistics and Supply Chain"),
    ("EDUCATION_MANAGEMENT", "Education Management"),
];

/// Deal types.
pub const DEAL_TYPES: &[(&str, &str)] = &[
    ("newbusiness", "New Business"),
    ("existingbusiness", "Existing Business"),
];

/// Ticket priorities.
pub const TICKET_PRIORITIES: &[(&str, &str)] = &[
    ("LOW", "Low"),
    ("MEDIUM", "Medium"),
    ("HIGH", "High"),
    ("URGENT", "Urgent"),
];

/// Ticket categories (multi-select).
pub const TICKET_CATEGORIES: &[(&str, &str)] = &[
    ("PRODUCT_ISSUE", "Product issue"),
    ("BILLING_ISSUE", "Billing issue"),
    ("FEATURE_REQUEST", "Feature request"),
    ("GENERAL_INQUIRY", "General inquiry"),
];

/// The default deal pipeline's stage ids.
pub const DEAL_STAGES: &[&str] = &[
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
];

/// The default ticket pipeline's stage ids.
pub const TICKET_STAGES: &[&str] = &["1", "2", "3", "4"];

fn text(name: &str, label: &str, group: &str) -> PropertyDef {
    let mut def = PropertyDef::builtin(name, label, PropType::String, "text", group);
    def.read_only_definition = false;
    def.form_field = true;
    def
}

fn number(name: &str, label: &str, group: &str) -> PropertyDef {
    PropertyDef::builtin(name, label, PropType::Number, "number", group)
}

fn select(
    name: &str,
    label: &str,
    group: &str,
    field: &str,
    options: &[(&str, &str)],
) -> PropertyDef {
    PropertyDef::builtin(name, label, PropType::Enumeration, field, group).with_options(options)
}

fn owner(group: &str) -> PropertyDef {
    PropertyDef::builtin(
        "hubspot_owner_id",
        "Owner",
        PropType::Enumeration,
        "select",
        group,
    )
    .external(Some("OWNER"))
}

/// The property registry of a standard object type (`None` for custom types).
pub fn standard_registry(
    object_type: ObjectTypeId,
    modified_property: &str,
) -> Option<PropertyRegistry> {
    let (group, label) = match object_type {
        ObjectTypeId::CONTACT => ("contactinformation", "Contact information"),
        ObjectTypeId::COMPANY => ("companyinformation", "Company information"),
        ObjectTypeId::DEAL => ("dealinformation", "Deal information"),
        ObjectTypeId::TICKET => ("ticketinformation", "Ticket information"),
        other => return more_registry(other, modified_property),
    };
    let mut reg = PropertyRegistry::with_system(modified_property, (group, label));
    let g = group;
    let defs: Vec<PropertyDef> = match object_type {
        ObjectTypeId::CONTACT => vec![
            text("email", "Email", g).unique(),
            text("firstname", "First Name", g),
            text("lastname", "Last Name", g),
            PropertyDef::builtin("phone", "Phone Number", PropType::String, "phonenumber", g),
            PropertyDef::builtin(
                "mobilephone",
                "Mobile Phone Number",
                PropType::String,
                "phonenumber",
                g,
            ),
            text("company", "Company Name", g),
            text("jobtitle", "Job Title", g),
            text("website", "Website URL", g),
            text("address", "Street Address", g),
            text("city", "City", g),
            text("state", "State/Region", g),
            text("zip", "Postal Code", g),
            text("country", "Country/Region", g),
            select(
                "lifecyclestage",
                "Lifecycle Stage",
                g,
                "radio",
                LIFECYCLE_STAGES,
            ),
            select("hs_lead_status", "Lead Status", g, "select", LEAD_STATUSES),
            PropertyDef::builtin(
                "hs_email_optout",
                "Unsubscribed from all email",
                PropType::Bool,
                "booleancheckbox",
                g,
            ),
            owner(g),
            number("associatedcompanyid", "Primary Associated Company ID", g)
                .derived(Derived::PrimaryCompany),
            text("hs_additional_emails", "Additional email addresses", g).read_only(),
            text("hs_calculated_merged_vids", "Merged Contact IDs", g).read_only(),
            number("hubspotscore", "HubSpot Score", g).calculated(),
            number("num_associated_deals", "Number of Associated Deals", g).calculated(),
        ],
        ObjectTypeId::COMPANY => vec![
            text("name", "Company name", g),
            text("domain", "Company Domain Name", g),
            text("website", "Website URL", g),
            select("industry", "Industry", g, "select", INDUSTRIES),
            PropertyDef::builtin("phone", "Phone Number", PropType::String, "phonenumber", g),
            text("city", "City", g),
            text("state", "State/Region", g),
            text("country", "Country/Region", g),
            number("numberofemployees", "Number of Employees", g),
            number("annualrevenue", "Annual Revenue", g),
            PropertyDef::builtin(
                "description",
                "Description",
                PropType::String,
                "textarea",
                g,
            ),
            select(
                "lifecyclestage",
                "Lifecycle Stage",
                g,
                "radio",
                LIFECYCLE_STAGES,
            ),
            owner(g),
            number(
                "num_associated_contacts",
                "Number of Associated Contacts",
                g,
            )
            .calculated(),
        ],
        ObjectTypeId::DEAL => vec![
            text("dealname", "Deal Name", g),
            number("amount", "Amount", g),
            PropertyDef::builtin("closedate", "Close Date", PropType::Datetime, "date", g),
            PropertyDef::builtin("pipeline", "Pipeline", PropType::Enumeration, "select", g)
                .external(None),
            PropertyDef::builtin("dealstage", "Deal Stage", PropType::Enumeration, "radio", g)
                .external(None),
            select("dealtype", "Deal Type", g, "radio", DEAL_TYPES),
            PropertyDef::builtin(
                "description",
                "Deal Description",
                PropType::String,
                "textarea",
                g,
            ),
            select(
                "hs_priority",
                "Priority",
                g,
                "select",
                &[("low", "Low"), ("medium", "Medium"), ("high", "High")],
            ),
            owner(g),
            PropertyDef::builtin(
                "hs_is_closed",
                "Is Deal Closed?",
                PropType::Bool,
                "booleancheckbox",
                g,
            )
            .calculated(),
        ],
        _ => vec![
            text("subject", "Ticket name", g),
            PropertyDef::builtin(
                "content",
                "Ticket description",
                PropType::String,
                "textarea",
                g,
            ),
            PropertyDef::builtin(
                "hs_pipeline",
                "Pipeline",
                PropType::Enumeration,
                "select",
                g,
            )
            .external(None),
            PropertyDef::builtin(
                "hs_pipeline_stage",
                "Ticket status",
                PropType::Enumeration,
                "select",
                g,
            )
            .external(None),
            select(
                "hs_ticket_priority",
                "Priority",
                g,
                "select",
                TICKET_PRIORITIES,
            ),
            select(
                "hs_ticket_category",
                "Category",
                g,
                "checkbox",
                TICKET_CATEGORIES,
            ),
            select(
                "source_type",
                "Source",
                g,
                "select",
                &[
                    ("EMAIL", "Email"),
                    ("CHAT", "Chat"),
                    ("PHONE", "Phone"),
                    ("FORM", "Form"),
                ],
            ),
            owner(g),
            PropertyDef::builtin("closed_date", "Close date", PropType::Datetime, "date", g),
        ],
    };
    for def in defs {
        reg.push(def);
    }
    reg.groups.push(PropertyGroup {
        name: "analyticsinformation".into(),
        label: "Analytics information".into(),
        display_order: -1,
        archived: false,
    });
    Some(reg)
}

/// The searchable text properties `query` matches for a standard type.
pub fn query_properties(object_type: ObjectTypeId) -> &'static [&'static str] {
    match object_type {
        ObjectTypeId::CONTACT => &["firstname", "lastname", "email", "phone", "company"],
        ObjectTypeId::COMPANY => &["name", "domain", "website", "phone"],
        ObjectTypeId::DEAL => &["dealname"],
        ObjectTypeId::TICKET => &["subject", "content"],
        _ => &[],
    }
}

/// A property of one of the further object types: name, label, type, field type.
pub type Prop = (&'static str, &'static str, PropType, &'static str);

/// One further object type: number, plural, singular, default properties, properties, owned.
pub type MoreType = (
    u32,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [Prop],
    bool,
);

const TS: Prop = ("hs_timestamp", "Activity date", PropType::Datetime, "date");

/// The further HubSpot-defined object types (commerce and engagements, hubspot-api.md §6.1):
/// type number, plural name, singular name, default properties, properties (plus owner where
/// HubSpot has one).
pub const MORE_TYPES: &[MoreType] = &[
    (
        7,
        "products",
        "product",
        &["name", "description", "price"],
        &[
            ("name", "Name", PropType::String, "text"),
            ("description", "Description", PropType::String, "textarea"),
            ("price", "Unit price", PropType::Number, "number"),
            ("hs_sku", "SKU", PropType::String, "text"),
            (
                "hs_cost_of_goods_sold",
                "Unit cost",
                PropType::Number,
                "number",
            ),
        ],
        false,
    ),
    (
        8,
        "line_items",
        "line_item",
        &["name", "quantity", "price", "amount"],
        &[
            ("name", "Name", PropType::String, "text"),
            ("quantity", "Quantity", PropType::Number, "number"),
            ("price", "Unit price", PropType::Number, "number"),
            ("amount", "Net price", PropType::Number, "number"),
            ("hs_product_id", "Product ID", PropType::Number, "number"),
            ("description", "Description", PropType::String, "textarea"),
        ],
        false,
    ),
    (
        14,
        "quotes",
        "quote",
        &["hs_title", "hs_expiration_date", "hs_status"],
        &[
            ("hs_title", "Quote name", PropType::String, "text"),
            (
                "hs_expiration_date",
                "Expiration date",
                PropType::Datetime,
                "date",
            ),
            ("hs_status", "Status", PropType::String, "text"),
            ("hs_quote_amount", "Amount", PropType::Number, "number"),
        ],
        true,
    ),
    (
        27,
        "tasks",
        "task",
        &["hs_task_subject", "hs_task_status", "hs_timestamp"],
        &[
            TS,
            ("hs_task_subject", "Task title", PropType::String, "text"),
            ("hs_task_body", "Notes", PropType::String, "textarea"),
            ("hs_task_status", "Task status", PropType::String, "text"),
            ("hs_task_priority", "Priority", PropType::String, "text"),
        ],
        true,
    ),
    (
        46,
        "notes",
        "note",
        &["hs_note_body", "hs_timestamp"],
        &[
            TS,
            ("hs_note_body", "Note body", PropType::String, "textarea"),
        ],
        true,
    ),
    (
        47,
        "meetings",
        "meeting",
        &["hs_meeting_title", "hs_timestamp"],
        &[
            TS,
            ("hs_meeting_title", "Meeting name", PropType::String, "text"),
            (
                "hs_meeting_body",
                "Meeting description",
                PropType::String,
                "textarea",
            ),
            (
                "hs_meeting_start_time",
                "Start time",
                PropType::Datetime,
                "date",
            ),
            (
                "hs_meeting_end_time",
                "End time",
                PropType::Datetime,
                "date",
            ),
        ],
        true,
    ),
    (
        48,
        "calls",
        "call",
        &["hs_call_title", "hs_timestamp"],
        &[
            TS,
            ("hs_call_title", "Call title", PropType::String, "text"),
            ("hs_call_body", "Call notes", PropType::String, "textarea"),
            (
                "hs_call_duration",
                "Call duration",
                PropType::Number,
                "number",
            ),
            (
                "hs_call_direction",
                "Call direction",
                PropType::String,
                "text",
            ),
        ],
        true,
    ),
    (
        49,
        "emails",
        "email",
        &["hs_email_subject", "hs_timestamp"],
        &[
            TS,
            (
                "hs_email_subject",
                "Email subject",
                PropType::String,
                "text",
            ),
            ("hs_email_text", "Email body", PropType::String, "textarea"),
            (
                "hs_email_direction",
                "Email direction",
                PropType::String,
                "text",
            ),
        ],
        true,
    ),
    (
        74,
        "goal_targets",
        "goal_target",
        &["hs_goal_name"],
        &[
            ("hs_goal_name", "Goal name", PropType::String, "text"),
            ("hs_target_amount", "Target", PropType::Number, "number"),
            ("hs_start_datetime", "Start", PropType::Datetime, "date"),
            ("hs_end_datetime", "End", PropType::Datetime, "date"),
        ],
        true,
    ),
    (
        136,
        "leads",
        "lead",
        &["hs_lead_name"],
        &[
            ("hs_lead_name", "Lead name", PropType::String, "text"),
            ("hs_lead_type", "Lead type", PropType::String, "text"),
        ],
        true,
    ),
];

fn more_registry(object_type: ObjectTypeId, modified_property: &str) -> Option<PropertyRegistry> {
    let (_, _, singular, _, props, owned) = MORE_TYPES
        .iter()
        .find(|t| object_type.meta == 0 && t.0 == object_type.number)?;
    let group = format!("{singular}information");
    let label = format!("{} information", singular.replace('_', " "));
    let mut reg = PropertyRegistry::with_system(modified_property, (&group, &label));
    for (name, label, prop_type, field_type) in *props {
        reg.push(PropertyDef::builtin(
            name, label, *prop_type, field_type, &group,
        ));
    }
    if *owned {
        reg.push(owner(&group));
    }
    Some(reg)
}
