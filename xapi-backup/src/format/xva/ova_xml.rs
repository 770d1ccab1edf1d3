//! `ova.xml`: the XVA's object table, a bare XML-RPC `<value>` (see the reference §2).
//!
//! The writer produces exactly xapi's bytes (ocaml-rpc's `Xmlrpc.to_string`): no declaration,
//! no whitespace, strings and ints untyped, `<i4>` for 32-bit ints, `>` `<` `&` `"` escaped and
//! control characters other than TAB, LF, CR dropped, `<boolean>0|1</boolean>`, `<double>%.16g</double>`. The reader
//! accepts every XML-RPC variant (`int`, `i4`, `i8`, `string`, `base64`, `nil`, untyped text,
//! `<value/>`, whitespace, CDATA, character references) and keeps every class and field, known or
//! not; typed views ([`VdiView`], [`VbdView`], ...) read the fields the disk codecs need.
//!
//! Reading and writing go through xapi-core's XML-RPC codec in document mode
//! ([`xapi_core::wire::OrderedValue`]): one parser, one escaper and one DOCTYPE policy (refused)
//! for `ova.xml` and for every XML-RPC message.

/// Failures while reading `ova.xml`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OvaXmlError {
    /// The XML itself is malformed.
    #[error("ova.xml: malformed xml at byte {offset}: {message}")]
    Xml {
        /// Byte offset in `ova.xml`.
        offset: u64,
        /// What the XML parser said.
        message: String,
    },
    /// The XML is well formed but not the XML-RPC shape expected.
    #[error("ova.xml: at byte {offset}: {message}")]
    Shape {
        /// Byte offset in `ova.xml`.
        offset: u64,
        /// What was expected.
        message: String,
    },
    /// A field the format requires is missing or of the wrong type.
    #[error("ova.xml: object {id} ({class}): field {field}: {message}")]
    Field {
        /// Object id (`Ref:42`), or `header`.
        id: String,
        /// Object class.
        class: String,
        /// Field name.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// One XML-RPC value as it appears in `ova.xml`: xapi-core's document-mode value (struct members
/// in document order, `<i4>` kept apart, datetimes as text), read and written by the same codec
/// as every XML-RPC message.
pub use xapi_core::wire::OrderedValue as Value;

/// The classes that can appear in `ova.xml` (reference §2.1), with a fallback for others.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OvaClass {
    /// `host`
    Host,
    /// `VM`
    Vm,
    /// `VM_metrics`
    VmMetrics,
    /// `VM_guest_metrics`
    VmGuestMetrics,
    /// `VBD`
    Vbd,
    /// `VIF`
    Vif,
    /// `network`
    Network,
    /// `VDI`
    Vdi,
    /// `SR`
    Sr,
    /// `VGPU_type`
    VgpuType,
    /// `VGPU`
    Vgpu,
    /// `GPU_group`
    GpuGroup,
    /// `PVS_proxy`
    PvsProxy,
    /// `PVS_site`
    PvsSite,
    /// `VTPM`
    Vtpm,
    /// Any other class name, kept verbatim.
    Other(String),
}

impl OvaClass {
    /// The class name as written in `ova.xml`.
    pub fn as_str(&self) -> &str {
        match self {
            OvaClass::Host => "host",
            OvaClass::Vm => "VM",
            OvaClass::VmMetrics => "VM_metrics",
            OvaClass::VmGuestMetrics => "VM_guest_metrics",
            OvaClass::Vbd => "VBD",
            OvaClass::Vif => "VIF",
            OvaClass::Network => "network",
            OvaClass::Vdi => "VDI",
            OvaClass::Sr => "SR",
            OvaClass::VgpuType => "VGPU_type",
            OvaClass::Vgpu => "VGPU",
            OvaClass::GpuGroup => "GPU_group",
            OvaClass::PvsProxy => "PVS_proxy",
            OvaClass::PvsSite => "PVS_site",
            OvaClass::Vtpm => "VTPM",
            OvaClass::Other(s) => s,
        }
    }

    /// Maps a class name to its variant.
    pub fn from_name(name: &str) -> Self {
        match name {
            "host" => OvaClass::Host,
            "VM" => OvaClass::Vm,
            "VM_metrics" => OvaClass::VmMetrics,
            "VM_guest_metrics" => OvaClass::VmGuestMetrics,
            "VBD" => OvaClass::Vbd,
            "VIF" => OvaClass::Vif,
            "network" => OvaClass::Network,
            "VDI" => OvaClass::Vdi,
            "SR" => OvaClass::Sr,
            "VGPU_type" => OvaClass::VgpuType,
            "VGPU" => OvaClass::Vgpu,
            "GPU_group" => OvaClass::GpuGroup,
            "PVS_proxy" => OvaClass::PvsProxy,
            "PVS_site" => OvaClass::PvsSite,
            "VTPM" => OvaClass::Vtpm,
            other => OvaClass::Other(other.to_owned()),
        }
    }
}

/// One exported object: its class, its export id (`Ref:<n>`) and its record.
#[derive(Debug, Clone, PartialEq)]
pub struct OvaObject {
    /// The object's class.
    pub class: OvaClass,
    /// The export id, e.g. `Ref:42`.
    pub id: String,
    /// The full record (`snapshot`), normally a struct keyed by `_`-joined field names.
    pub snapshot: Value,
}

impl OvaObject {
    /// A string field of the record.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.snapshot.get(name).and_then(Value::as_str)
    }

    fn field_error(&self, field: &str, message: &str) -> OvaXmlError {
        OvaXmlError::Field {
            id: self.id.clone(),
            class: self.class.as_str().to_owned(),
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// The `version` struct of the header.
#[derive(Debug, Clone, PartialEq)]
pub struct OvaVersion {
    /// Exporting host name.
    pub hostname: String,
    /// Export date as written.
    pub date: String,
    /// Product version, e.g. `8.4.0`.
    pub product_version: String,
    /// Product brand.
    pub product_brand: String,
    /// Build number.
    pub build_number: String,
    /// xapi major version.
    pub xapi_major: i64,
    /// xapi minor version.
    pub xapi_minor: i64,
    /// Export format version; missing reads as 0. Checksums are inline iff it is above 0.
    pub export_vsn: i64,
    /// Members not listed above, kept verbatim.
    pub extra: Vec<(String, Value)>,
}

impl Default for OvaVersion {
    fn default() -> Self {
        Self {
            hostname: String::new(),
            date: String::new(),
            product_version: String::new(),
            product_brand: String::new(),
            build_number: String::new(),
            xapi_major: 0,
            xapi_minor: 0,
            export_vsn: EXPORT_VSN,
            extra: Vec::new(),
        }
    }
}

/// The export format version current xapi writes.
pub const EXPORT_VSN: i64 = 2;

/// The whole `ova.xml`: version header and objects in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OvaXml {
    /// The `version` struct.
    pub version: OvaVersion,
    /// Every object, in file order.
    pub objects: Vec<OvaObject>,
}

/// Typed view of a `VDI` object: what the disk codecs need.
#[derive(Debug, Clone, PartialEq)]
pub struct VdiView<'a> {
    /// Export id.
    pub id: &'a str,
    /// `uuid`.
    pub uuid: Option<&'a str>,
    /// `name_label`.
    pub name_label: Option<&'a str>,
    /// `virtual_size` in bytes.
    pub virtual_size: u64,
    /// `SR` (an export id or `OpaqueRef:NULL`).
    pub sr: Option<&'a str>,
    /// `type` (`user`, `system`, ...).
    pub vdi_type: Option<&'a str>,
}

/// Typed view of a `VBD` object.
#[derive(Debug, Clone, PartialEq)]
pub struct VbdView<'a> {
    /// Export id.
    pub id: &'a str,
    /// `VM` export id.
    pub vm: Option<&'a str>,
    /// `VDI` export id (or `OpaqueRef:NULL`).
    pub vdi: Option<&'a str>,
    /// `type`: `Disk`, `CD` or `Floppy`.
    pub vbd_type: Option<&'a str>,
    /// `userdevice`.
    pub userdevice: Option<&'a str>,
}

/// Typed view of a `VM` object.
#[derive(Debug, Clone, PartialEq)]
pub struct VmView<'a> {
    /// Export id.
    pub id: &'a str,
    /// `uuid`.
    pub uuid: Option<&'a str>,
    /// `name_label`.
    pub name_label: Option<&'a str>,
    /// `power_state`.
    pub power_state: Option<&'a str>,
    /// `is_a_template`.
    pub is_a_template: bool,
    /// `is_a_snapshot`.
    pub is_a_snapshot: bool,
}

/// Typed view of a `VIF` object.
#[derive(Debug, Clone, PartialEq)]
pub struct VifView<'a> {
    /// Export id.
    pub id: &'a str,
    /// `device`.
    pub device: Option<&'a str>,
    /// `MAC`.
    pub mac: Option<&'a str>,
    /// `network` export id.
    pub network: Option<&'a str>,
    /// `VM` export id.
    pub vm: Option<&'a str>,
}

/// Typed view of a `network` object.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkView<'a> {
    /// Export id.
    pub id: &'a str,
    /// `uuid`.
    pub uuid: Option<&'a str>,
    /// `name_label`.
    pub name_label: Option<&'a str>,
    /// `bridge`.
    pub bridge: Option<&'a str>,
    /// `MTU`.
    pub mtu: Option<i64>,
}

/// Typed view of an `SR` object.
#[derive(Debug, Clone, PartialEq)]
pub struct SrView<'a> {
    /// Export id.
    pub id: &'a str,
    /// `uuid`.
    pub uuid: Option<&'a str>,
    /// `name_label`.
    pub name_label: Option<&'a str>,
    /// `type` (`lvm`, `nfs`, `ext`, ...).
    pub sr_type: Option<&'a str>,
    /// `content_type` (`iso` SRs hold no exported disks).
    pub content_type: Option<&'a str>,
}

/// Typed view of a `VTPM` object (hand-made record keys `vTPM'_*`, reference §2.1).
///
/// Its `content` is secret material.
#[derive(Debug, Clone, PartialEq)]
pub struct VtpmView<'a> {
    /// Export id.
    pub id: &'a str,
    /// `vTPM'_VM`.
    pub vm: Option<&'a str>,
    /// `vTPM'_uuid`.
    pub uuid: Option<&'a str>,
    /// `vTPM'_content` (secret).
    pub content: Option<&'a str>,
}

impl OvaXml {
    /// Objects of one class, in file order.
    pub fn objects_of<'a>(&'a self, class: &'a OvaClass) -> impl Iterator<Item = &'a OvaObject> {
        self.objects.iter().filter(move |o| &o.class == class)
    }

    /// Looks an object up by export id.
    pub fn object(&self, id: &str) -> Option<&OvaObject> {
        self.objects.iter().find(|o| o.id == id)
    }

    /// Every VM.
    pub fn vms(&self) -> Vec<VmView<'_>> {
        self.objects_of(&OvaClass::Vm)
            .map(|o| VmView {
                id: &o.id,
                uuid: o.str_field("uuid"),
                name_label: o.str_field("name_label"),
                power_state: o.str_field("power_state"),
                is_a_template: o
                    .snapshot
                    .get("is_a_template")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                is_a_snapshot: o
                    .snapshot
                    .get("is_a_snapshot")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })
            .collect()
    }

    /// Every VBD.
    pub fn vbds(&self) -> Vec<VbdView<'_>> {
        self.objects_of(&OvaClass::Vbd)
            .map(|o| VbdView {
                id: &o.id,
                vm: o.str_field("VM"),
                vdi: o.str_field("VDI"),
                vbd_type: o.str_field("type"),
                userdevice: o.str_field("userdevice"),
            })
            .collect()
    }

    /// Every VIF.
    pub fn vifs(&self) -> Vec<VifView<'_>> {
        self.objects_of(&OvaClass::Vif)
            .map(|o| VifView {
                id: &o.id,
                device: o.str_field("device"),
                mac: o.str_field("MAC"),
                network: o.str_field("network"),
                vm: o.str_field("VM"),
            })
            .collect()
    }

    /// Every network.
    pub fn networks(&self) -> Vec<NetworkView<'_>> {
        self.objects_of(&OvaClass::Network)
            .map(|o| NetworkView {
                id: &o.id,
                uuid: o.str_field("uuid"),
                name_label: o.str_field("name_label"),
                bridge: o.str_field("bridge"),
                mtu: o.snapshot.get("MTU").and_then(Value::as_i64),
            })
            .collect()
    }

    /// Every SR.
    pub fn srs(&self) -> Vec<SrView<'_>> {
        self.objects_of(&OvaClass::Sr)
            .map(|o| SrView {
                id: &o.id,
                uuid: o.str_field("uuid"),
                name_label: o.str_field("name_label"),
                sr_type: o.str_field("type"),
                content_type: o.str_field("content_type"),
            })
            .collect()
    }

    /// Every VTPM.
    pub fn vtpms(&self) -> Vec<VtpmView<'_>> {
        self.objects_of(&OvaClass::Vtpm)
            .map(|o| VtpmView {
                id: &o.id,
                vm: o.str_field("vTPM'_VM"),
                uuid: o.str_field("vTPM'_uuid"),
                content: o.str_field("vTPM'_content"),
            })
            .collect()
    }

    /// Typed view of one VDI; its `virtual_size` is required.
    pub fn vdi(&self, id: &str) -> Result<VdiView<'_>, OvaXmlError> {
        let o = self
            .objects
            .iter()
            .find(|o| o.id == id && o.class == OvaClass::Vdi)
            .ok_or_else(|| OvaXmlError::Field {
                id: id.to_owned(),
                class: "VDI".to_owned(),
                field: "id".to_owned(),
                message: "no VDI object with this id".to_owned(),
            })?;
        let size = o
            .snapshot
            .get("virtual_size")
            .ok_or_else(|| o.field_error("virtual_size", "missing"))?
            .as_i64()
            .filter(|v| *v >= 0)
            .ok_or_else(|| o.field_error("virtual_size", "not a non-negative integer"))?;
        Ok(VdiView {
            id: &o.id,
            uuid: o.str_field("uuid"),
            name_label: o.str_field("name_label"),
            virtual_size: size as u64,
            sr: o.str_field("SR"),
            vdi_type: o.str_field("type"),
        })
    }

    /// The disks whose data follows `ova.xml`, as xapi's importer picks them
    /// (`Import.non_cdrom_vdis`): the VDIs referenced by non-CD VBDs, except those on an SR
    /// whose `content_type` is `iso`, plus every VDI of type `suspend` (the memory image of a
    /// VM exported suspended); deduplicated and sorted by the **string** of their id.
    pub fn disks(&self) -> Result<Vec<VdiView<'_>>, OvaXmlError> {
        let vdi_object = |id: &str| {
            self.objects
                .iter()
                .find(|o| o.id == id && o.class == OvaClass::Vdi)
        };
        let on_iso_sr = |vdi: &OvaObject| {
            vdi.str_field("SR").is_some_and(|sr| {
                self.objects.iter().any(|o| {
                    o.id == sr
                        && o.class == OvaClass::Sr
                        && o.str_field("content_type") == Some("iso")
                })
            })
        };
        let mut ids: Vec<&str> = self
            .vbds()
            .into_iter()
            .filter(|v| v.vbd_type != Some("CD"))
            .filter_map(|v| v.vdi)
            .filter(|id| vdi_object(id).is_some_and(|vdi| !on_iso_sr(vdi)))
            .collect();
        ids.extend(
            self.objects_of(&OvaClass::Vdi)
                .filter(|o| o.str_field("type") == Some("suspend"))
                .map(|o| o.id.as_str()),
        );
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|id| self.vdi(id)).collect()
    }

    /// Serialises exactly as xapi does: one bare `<value>`, no declaration, no whitespace.
    pub fn to_xml(&self) -> String {
        let v = &self.version;
        let mut version = vec![
            ("hostname".to_owned(), Value::String(v.hostname.clone())),
            ("date".to_owned(), Value::String(v.date.clone())),
            (
                "product_version".to_owned(),
                Value::String(v.product_version.clone()),
            ),
            (
                "product_brand".to_owned(),
                Value::String(v.product_brand.clone()),
            ),
            (
                "build_number".to_owned(),
                Value::String(v.build_number.clone()),
            ),
            ("xapi_major".to_owned(), Value::Int(v.xapi_major)),
            ("xapi_minor".to_owned(), Value::Int(v.xapi_minor)),
            ("export_vsn".to_owned(), Value::Int(v.export_vsn)),
        ];
        version.extend(v.extra.iter().cloned());
        let objects = self
            .objects
            .iter()
            .map(|o| {
                Value::Struct(vec![
                    (
                        "class".to_owned(),
                        Value::String(o.class.as_str().to_owned()),
                    ),
                    ("id".to_owned(), Value::String(o.id.clone())),
                    ("snapshot".to_owned(), o.snapshot.clone()),
                ])
            })
            .collect();
        let header = Value::Struct(vec![
            ("version".to_owned(), Value::Struct(version)),
            ("objects".to_owned(), Value::Array(objects)),
        ]);
        value_to_xml(&header)
    }

    /// Parses `ova.xml`, leniently toward every XML-RPC variant.
    pub fn parse(xml: &[u8]) -> Result<Self, OvaXmlError> {
        let root = parse_value_document(xml)?;
        let shape = |message: &str| OvaXmlError::Shape {
            offset: 0,
            message: message.to_owned(),
        };
        let version_value = root
            .get("version")
            .ok_or_else(|| shape("no version member"))?;
        let vs = version_value
            .as_struct()
            .ok_or_else(|| shape("version is not a struct"))?;
        let mut version = OvaVersion {
            export_vsn: 0,
            ..OvaVersion::default()
        };
        for (k, val) in vs {
            let text = || match val {
                Value::String(s) | Value::DateTime(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                Value::Int32(i) => i.to_string(),
                other => format!("{other:?}"),
            };
            let int = |field: &str| {
                val.as_i64().ok_or_else(|| OvaXmlError::Field {
                    id: "header".to_owned(),
                    class: "version".to_owned(),
                    field: field.to_owned(),
                    message: "not an integer".to_owned(),
                })
            };
            match k.as_str() {
                "hostname" => version.hostname = text(),
                "date" => version.date = text(),
                "product_version" => version.product_version = text(),
                "product_brand" => version.product_brand = text(),
                "build_number" => version.build_number = text(),
                "xapi_major" => version.xapi_major = int(k)?,
                "xapi_minor" => version.xapi_minor = int(k)?,
                "export_vsn" => version.export_vsn = int(k)?,
                _ => version.extra.push((k.clone(), val.clone())),
            }
        }
        let objects_value = root
            .get("objects")
            .ok_or_else(|| shape("no objects member"))?;
        let list = objects_value
            .as_array()
            .ok_or_else(|| shape("objects is not an array"))?;
        let mut objects = Vec::with_capacity(list.len());
        for (i, o) in list.iter().enumerate() {
            let field = |name: &str| {
                o.get(name)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| OvaXmlError::Field {
                        id: format!("objects[{i}]"),
                        class: "?".to_owned(),
                        field: name.to_owned(),
                        message: "missing or not a string".to_owned(),
                    })
            };
            let class = OvaClass::from_name(&field("class")?);
            let id = field("id")?;
            let snapshot = o
                .get("snapshot")
                .cloned()
                .unwrap_or(Value::Struct(Vec::new()));
            objects.push(OvaObject {
                class,
                id,
                snapshot,
            });
        }
        Ok(Self { version, objects })
    }
}

/// Formats a double as C's `%.16g` (ocaml-rpc's XML-RPC `<double>`): see
/// [`xapi_core::wire::format_g`].
pub fn format_double(x: f64) -> String {
    xapi_core::wire::format_g(x, 16)
}

/// Parses a document whose root element is one XML-RPC `<value>`, through xapi-core's XML-RPC
/// codec in document mode ([`xapi_core::wire::xmlrpc::decode_document`]): every variant xapi or
/// another writer produces is read; a DTD is refused as in every XML-RPC message.
pub fn parse_value_document(xml: &[u8]) -> Result<Value, OvaXmlError> {
    let limits = xapi_core::wire::Limits {
        max_response_bytes: xml.len(),
        max_depth: MAX_DEPTH,
    };
    xapi_core::wire::xmlrpc::decode_document(xml, &limits).map_err(|err| OvaXmlError::Xml {
        offset: err.offset,
        message: err.kind.to_string(),
    })
}

/// The deepest nesting of values accepted (xapi's `ova.xml` nests four deep).
const MAX_DEPTH: usize = 64;

/// Serialises one value the way xapi does.
pub fn value_to_xml(v: &Value) -> String {
    xapi_core::wire::xmlrpc::encode_document(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written `ova.xml` following the reference §2, indented and with the variants
    /// other writers use (`<string>`, `<int>`, `<value/>`, entities, a declaration).
    const HAND_MADE: &str = r#"<?xml version="1.0"?>
<value><struct>
  <member><name>version</name><value><struct>
    <member><name>hostname</name><value>xcp1</value></member>
    <member><name>date</name><value>2026-11-22</value></member>
    <member><name>product_version</name><value>8.4.0</value></member>
    <member><name>product_brand</name><value><string>XCP-ng</string></value></member>
    <member><name>build_number</name><value/></member>
    <member><name>xapi_major</name><value><i4>25</i4></value></member>
    <member><name>xapi_minor</name><value><int>6</int></value></member>
    <member><name>export_vsn</name><value><i4>2</i4></value></member>
  </struct></value></member>
  <member><name>objects</name><value><array><data>
    <value><struct>
      <member><name>class</name><value>VM</value></member>
      <member><name>id</name><value>Ref:10</value></member>
      <member><name>snapshot</name><value><struct>
        <member><name>name_label</name><value>web &amp; db &lt;prod&gt; &#233;</value></member>
        <member><name>power_state</name><value>Halted</value></member>
        <member><name>is_a_template</name><value><boolean>0</boolean></value></member>
        <member><name>memory_static_max</name><value>4294967296</value></member>
        <member><name>VCPUs_at_startup</name><value>2</value></member>
        <member><name>HVM_shadow_multiplier</name><value><double>1</double></value></member>
        <member><name>snapshot_time</name><value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value></member>
        <member><name>VBDs</name><value><array><data><value>Ref:11</value></data></array></value></member>
        <member><name>other_config</name><value><struct></struct></value></member>
        <member><name>suspend_VDI</name><value>OpaqueRef:NULL</value></member>
      </struct></value></member>
    </struct></value>
    <value><struct>
      <member><name>class</name><value>VBD</value></member>
      <member><name>id</name><value>Ref:11</value></member>
      <member><name>snapshot</name><value><struct>
        <member><name>VM</name><value>Ref:10</value></member>
        <member><name>VDI</name><value>Ref:12</value></member>
        <member><name>type</name><value>Disk</value></member>
        <member><name>userdevice</name><value>0</value></member>
      </struct></value></member>
    </struct></value>
    <value><struct>
      <member><name>class</name><value>VDI</value></member>
      <member><name>id</name><value>Ref:12</value></member>
      <member><name>snapshot</name><value><struct>
        <member><name>virtual_size</name><value>10737418240</value></member>
        <member><name>SR</name><value>OpaqueRef:NULL</value></member>
      </struct></value></member>
    </struct></value>
    <value><struct>
      <member><name>class</name><value>VTPM</value></member>
      <member><name>id</name><value>Ref:13</value></member>
      <member><name>snapshot</name><value><struct>
        <member><name>vTPM'_VM</name><value>Ref:10</value></member>
        <member><name>vTPM'_content</name><value>c2VjcmV0</value></member>
      </struct></value></member>
    </struct></value>
    <value><struct>
      <member><name>class</name><value>network</value></member>
      <member><name>id</name><value>Ref:15</value></member>
      <member><name>snapshot</name><value><struct>
        <member><name>name_label</name><value>Pool-wide network</value></member>
        <member><name>bridge</name><value>xenbr0</value></member>
        <member><name>MTU</name><value>1500</value></member>
      </struct></value></member>
    </struct></value>
    <value><struct>
      <member><name>class</name><value>SR</value></member>
      <member><name>id</name><value>Ref:16</value></member>
      <member><name>snapshot</name><value><struct>
        <member><name>type</name><value>lvm</value></member>
        <member><name>content_type</name><value>user</value></member>
      </struct></value></member>
    </struct></value>
    <value><struct>
      <member><name>class</name><value>PUSB</value></member>
      <member><name>id</name><value>Ref:14</value></member>
      <member><name>snapshot</name><value><struct><member><name>x</name><value><nil/></value></member></struct></value></member>
    </struct></value>
  </data></array></value></member>
</struct></value>
"#;

    #[test]
    fn hand_made_ova_xml_parses_into_typed_objects() {
        let ova = OvaXml::parse(HAND_MADE.as_bytes()).expect("valid ova.xml");
        assert_eq!(ova.version.hostname, "xcp1");
        assert_eq!(ova.version.product_brand, "XCP-ng");
        assert_eq!(ova.version.build_number, "");
        assert_eq!((ova.version.xapi_major, ova.version.xapi_minor), (25, 6));
        assert_eq!(ova.version.export_vsn, 2);
        let vms = ova.vms();
        assert_eq!(vms.len(), 1);
        assert_eq!(vms[0].name_label, Some("web & db <prod> é"));
        assert_eq!(vms[0].power_state, Some("Halted"));
        assert!(!vms[0].is_a_template);
        let vm = ova.object("Ref:10").expect("vm present");
        assert_eq!(
            vm.snapshot.get("memory_static_max").and_then(Value::as_i64),
            Some(4_294_967_296)
        );
        assert_eq!(
            vm.snapshot.get("HVM_shadow_multiplier"),
            Some(&Value::Double(1.0))
        );
        let disks = ova.disks().expect("disks");
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].id, "Ref:12");
        assert_eq!(disks[0].virtual_size, 10_737_418_240);
        assert_eq!(ova.vtpms()[0].content, Some("c2VjcmV0"));
        let nets = ova.networks();
        assert_eq!((nets[0].bridge, nets[0].mtu), (Some("xenbr0"), Some(1500)));
        assert_eq!(ova.srs()[0].sr_type, Some("lvm"));
        let other = ova.object("Ref:14").expect("unknown class kept");
        assert_eq!(other.class, OvaClass::Other("PUSB".into()));
        assert_eq!(other.snapshot.get("x"), Some(&Value::Nil));
    }

    #[test]
    fn writer_output_is_xapi_shaped_and_round_trips() {
        let ova = OvaXml::parse(HAND_MADE.as_bytes()).expect("valid ova.xml");
        let xml = ova.to_xml();
        assert!(xml.starts_with("<value><struct><member><name>version</name><value><struct><member><name>hostname</name><value>xcp1</value></member>"));
        assert!(!xml.contains('\n'), "no whitespace between elements");
        assert!(!xml.starts_with("<?xml"));
        assert!(xml.contains("<member><name>xapi_major</name><value>25</value></member>"));
        assert!(xml.contains("<member><name>export_vsn</name><value>2</value></member>"));
        assert!(xml.contains("<value>web &amp; db &lt;prod&gt; é</value>"));
        assert!(xml.contains("<value><boolean>0</boolean></value>"));
        let back = OvaXml::parse(xml.as_bytes()).expect("own output parses");
        assert_eq!(back, ova);
        assert_eq!(back.to_xml(), xml, "writer is a fixed point");
    }

    #[test]
    fn disks_follow_xapis_non_cdrom_vdis() {
        // Ref:2 on a Disk VBD (streamed), Ref:3 on a Disk VBD but on an ISO SR (not
        // streamed), Ref:4 behind a CD VBD (not streamed), Ref:5 a suspend image with no VBD
        // (streamed), Ref:10 on a Disk VBD (streamed, sorted as a string before Ref:2).
        let obj = |class: &str, id: &str, fields: Vec<(&str, Value)>| OvaObject {
            class: OvaClass::from_name(class),
            id: id.to_owned(),
            snapshot: Value::Struct(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
        };
        let s = |t: &str| Value::String(t.to_owned());
        let vdi = |id: &str, sr: &str, ty: &str| {
            obj(
                "VDI",
                id,
                vec![
                    ("virtual_size", Value::Int(512)),
                    ("SR", s(sr)),
                    ("type", s(ty)),
                ],
            )
        };
        let vbd =
            |id: &str, vdi: &str, ty: &str| obj("VBD", id, vec![("VDI", s(vdi)), ("type", s(ty))]);
        let ova = OvaXml {
            version: OvaVersion::default(),
            objects: vec![
                obj("SR", "Ref:20", vec![("content_type", s("user"))]),
                obj("SR", "Ref:21", vec![("content_type", s("iso"))]),
                vdi("Ref:2", "Ref:20", "user"),
                vdi("Ref:3", "Ref:21", "user"),
                vdi("Ref:4", "Ref:21", "user"),
                vdi("Ref:5", "Ref:20", "suspend"),
                vdi("Ref:10", "Ref:20", "system"),
                vbd("Ref:30", "Ref:2", "Disk"),
                vbd("Ref:31", "Ref:3", "Disk"),
                vbd("Ref:32", "Ref:4", "CD"),
                vbd("Ref:33", "Ref:10", "Disk"),
                vbd("Ref:34", "Ref:2", "Disk"),
            ],
        };
        let ids: Vec<&str> = ova.disks().expect("disks").iter().map(|d| d.id).collect();
        assert_eq!(ids, ["Ref:10", "Ref:2", "Ref:5"]);
    }

    #[test]
    fn missing_export_vsn_reads_as_zero() {
        let xml = "<value><struct><member><name>version</name><value><struct></struct></value></member><member><name>objects</name><value><array><data></data></array></value></member></struct></value>";
        let ova = OvaXml::parse(xml.as_bytes()).expect("valid");
        assert_eq!(ova.version.export_vsn, 0);
    }

    #[test]
    fn control_characters_are_dropped_on_output() {
        let s = value_to_xml(&Value::String("a\u{1}b\tc\"".into()));
        assert_eq!(s, "<value>ab\tc&quot;</value>");
        assert_eq!(
            value_to_xml(&Value::Int(1 << 40)),
            "<value>1099511627776</value>"
        );
        assert_eq!(
            value_to_xml(&Value::Int32(-3)),
            "<value><i4>-3</i4></value>"
        );
    }

    #[test]
    fn doubles_print_like_c_g16() {
        assert_eq!(format_double(1.0), "1");
        assert_eq!(format_double(0.5), "0.5");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(0.00001), "1e-05");
        assert_eq!(format_double(0.1), "0.1");
    }

    #[test]
    fn malformed_documents_are_typed_errors() {
        for bad in [
            "",
            "<value>",
            "<value><struct><member><name>x</name></member></struct></value>",
            "<value><i4>twelve</i4></value>",
            "<value><bogus>1</bogus></value>",
            "<value>a</value><value>b</value>",
        ] {
            assert!(parse_value_document(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let deep = "<value><array><data>".repeat(200);
        assert!(parse_value_document(deep.as_bytes()).is_err());
    }
}
