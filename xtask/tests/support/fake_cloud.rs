//! The in-process cloud: the tool's `Compute` seam answered by the loopback Compute API's own
//! state, with no gcloud and no socket in between. A test that runs the tool in-process
//! ([`super::HostCopy::run`]) gets this cloud; what it changes, a test reads back through
//! [`ComputeApi`] as it reads what gcloud changed. Only the contract tier (`gcloud.rs`) and the
//! end-to-end journeys go through the real gcloud.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use xshell::Shell;
use xtask::testing::{Cloud, Compute, Image, Instance, SerialOutput, Vm};

use super::compute_api::ComputeApi;

/// The account the fake acts as, as the tests' gcloud configuration names it.
pub const ACCOUNT: &str = "tester@example.com";

/// A [`Cloud`] whose every project is served by `api`.
pub struct FakeCloud {
    pub api: ComputeApi,
    /// `None`: no account is set, as after `gcloud auth revoke`.
    pub account: Option<String>,
}

impl FakeCloud {
    pub fn new(api: ComputeApi) -> FakeCloud {
        FakeCloud {
            api,
            account: Some(ACCOUNT.to_string()),
        }
    }
}

impl Cloud for FakeCloud {
    fn connect<'s>(&self, _sh: &'s Shell, project: &str) -> anyhow::Result<Box<dyn Compute + 's>> {
        Ok(Box::new(FakeCompute {
            api: self.api.clone(),
            project: project.to_string(),
            account: self.account.clone(),
        }))
    }
}

/// One project of the fake cloud.
pub struct FakeCompute {
    api: ComputeApi,
    project: String,
    account: Option<String>,
}

impl FakeCompute {
    fn base(&self) -> String {
        format!("/compute/v1/projects/{}", self.project)
    }

    /// One request; its JSON answer, or the API's error message as the failure.
    fn call(&self, method: &str, target: &str, body: &Value) -> anyhow::Result<Value> {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, answer) = self
            .api
            .handle(method, target, &body)
            .ok_or_else(|| anyhow!("{method} {target} got no answer from the Compute API"))?;
        let answer: Value = serde_json::from_str(&answer)
            .with_context(|| format!("reading the answer to {method} {target}"))?;
        if status != 200 {
            bail!(
                "{method} {target} failed: {status} {}",
                answer["error"]["message"].as_str().unwrap_or_default()
            );
        }
        Ok(answer)
    }

    fn get<T: DeserializeOwned>(&self, target: &str) -> anyhow::Result<T> {
        let answer = self.call("GET", target, &Value::Null)?;
        serde_json::from_value(answer).with_context(|| format!("reading GET {target}"))
    }

    fn images(&self) -> anyhow::Result<Vec<Image>> {
        let list: Value = self.get(&format!("{}/global/images", self.base()))?;
        serde_json::from_value(list["items"].clone()).context("reading the images")
    }
}

impl Compute for FakeCompute {
    fn project(&self) -> &str {
        &self.project
    }

    fn list_images_for(&self, _what: &str) -> anyhow::Result<Vec<Image>> {
        self.api.note_call("list_images_for");
        self.images()
    }

    fn image_from_family(&self, family: &str) -> anyhow::Result<Image> {
        self.api.note_call("image_from_family");
        self.get(&format!("{}/global/images/family/{family}", self.base()))
    }

    fn describe_image(&self, name: &str) -> anyhow::Result<Image> {
        self.api.note_call("describe_image");
        self.get(&format!("{}/global/images/{name}", self.base()))
    }

    fn add_image_labels(&self, image: &str, labels: &[(String, String)]) -> anyhow::Result<()> {
        self.api.note_call("add_image_labels");
        if labels.is_empty() {
            return Ok(());
        }
        let target = format!("{}/global/images/{image}", self.base());
        let current = self.call("GET", &target, &Value::Null)?;
        let mut merged: BTreeMap<String, Value> =
            serde_json::from_value(current["labels"].clone()).unwrap_or_default();
        for (key, value) in labels {
            merged.insert(key.clone(), json!(value));
        }
        let body = json!({"labels": merged, "labelFingerprint": current["labelFingerprint"]});
        self.call("POST", &format!("{target}/setLabels"), &body)
            .map(drop)
    }

    fn deprecate_image(
        &self,
        image: &str,
        replacement: Option<&str>,
        at: &str,
    ) -> anyhow::Result<()> {
        self.api.note_call("deprecate_image");
        let mut body = json!({"state": "DEPRECATED", "deprecated": at});
        if let Some(replacement) = replacement {
            body["replacement"] = json!(format!(
                "https://compute.googleapis.com{}/global/images/{replacement}",
                self.base()
            ));
        }
        self.call(
            "POST",
            &format!("{}/global/images/{image}/deprecate", self.base()),
            &body,
        )
        .map(drop)
    }

    fn reactivate_image(&self, image: &str) -> anyhow::Result<()> {
        self.api.note_call("reactivate_image");
        self.call(
            "POST",
            &format!("{}/global/images/{image}/deprecate", self.base()),
            &json!({"state": "ACTIVE"}),
        )
        .map(drop)
    }

    fn delete_images(&self, names: &[String]) -> anyhow::Result<()> {
        self.api.note_call("delete_images");
        let mut failed = Vec::new();
        for name in names {
            let target = format!("{}/global/images/{name}", self.base());
            if let Err(err) = self.call("DELETE", &target, &Value::Null) {
                failed.push(format!("{err:#}"));
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        let remaining = self.images()?;
        let (remain, gone): (Vec<&String>, Vec<&String>) = names
            .iter()
            .partition(|name| remaining.iter().any(|image| &image.name == *name));
        bail!(
            "deleting images failed part-way: deleted {:?}; still there: {:?} ({})",
            gone,
            remain,
            failed.join("; ")
        )
    }

    fn list_instances(&self) -> anyhow::Result<Vec<Instance>> {
        self.api.note_call("list_instances");
        let list: Value = self.get(&format!("{}/aggregated/instances", self.base()))?;
        let mut instances = Vec::new();
        for scoped in list["items"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            for vm in scoped["instances"].as_array().into_iter().flatten() {
                let text = |key: &str| vm[key].as_str().unwrap_or_default().to_string();
                instances.push(Instance {
                    name: text("name"),
                    zone: text("zone")
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                    status: text("status"),
                    creation_timestamp: text("creationTimestamp"),
                    description: text("description"),
                    labels: serde_json::from_value(vm["labels"].clone()).unwrap_or_default(),
                });
            }
        }
        Ok(instances)
    }

    fn delete_instances(&self, zone: &str, names: &[String]) -> anyhow::Result<()> {
        self.api.note_call("delete_instances");
        for name in names {
            self.call(
                "DELETE",
                &format!("{}/zones/{zone}/instances/{name}", self.base()),
                &Value::Null,
            )?;
        }
        Ok(())
    }

    /// The insert gcloud sends for `compute instances create` with the tool's flags.
    fn create_instance(&self, vm: &Vm, startup_script: &Path) -> anyhow::Result<()> {
        self.api.note_call("create_instance");
        let script = std::fs::read_to_string(startup_script)
            .with_context(|| format!("reading {}", startup_script.display()))?;
        let labels: BTreeMap<&str, &str> = vm
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let base = self.base();
        let body = json!({
            "name": vm.name,
            "machineType": format!("{base}/zones/{}/machineTypes/{}", vm.zone, vm.machine_type),
            "disks": [{
                "boot": true,
                "autoDelete": true,
                "initializeParams": {"sourceImage": format!("{base}/global/images/{}", vm.image)},
            }],
            "networkInterfaces": [{"subnetwork": "default"}],
            "metadata": {"items": [{"key": "startup-script", "value": script}]},
            "labels": labels,
            "scheduling": {
                "maxRunDuration": {"seconds": vm.fuse_s.to_string()},
                "instanceTerminationAction": "DELETE",
            },
        });
        self.call(
            "POST",
            &format!("{base}/zones/{}/instances", vm.zone),
            &body,
        )
        .map(drop)
    }

    fn serial_output(&self, zone: &str, name: &str, start: u64) -> anyhow::Result<SerialOutput> {
        self.api.note_call("serial_output");
        self.get(&format!(
            "{}/zones/{zone}/instances/{name}/serialPort?start={start}",
            self.base()
        ))
    }

    fn account(&self) -> anyhow::Result<Option<String>> {
        self.api.note_call("account");
        Ok(self.account.clone())
    }

    fn check_project(&self) -> anyhow::Result<()> {
        self.api.note_call("check_project");
        self.call("GET", &self.base(), &Value::Null).map(drop)
    }
}
