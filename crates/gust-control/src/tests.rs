use std::io::Write;

use gust_model::{AliasUpdate, FunctionState, RuntimeFamily, SystemClock};

use super::*;

fn plane() -> (tempfile::TempDir, ControlPlane) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let plane = ControlPlane::new(
        store,
        Scope::parse("us-east-1", "000000000000").unwrap(),
        RuntimeCatalog::new(vec![RuntimeFamily::Python]),
        Arc::new(SystemClock),
    );
    (dir, plane)
}

fn zip(body: &str) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file("app.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    writer.write_all(body.as_bytes()).unwrap();
    writer.finish().unwrap().into_inner()
}

fn request(name: &str) -> CreateFunction {
    CreateFunction {
        function_name: name.into(),
        settings: FunctionUpdate {
            runtime: Some("python3.12".into()),
            role: Some("arn:aws:iam::000000000000:role/r".into()),
            handler: Some("app.handler".into()),
            ..FunctionUpdate::default()
        },
        tags: Tags::new(),
        publish: false,
    }
}

fn reference(plane: &ControlPlane, input: &str) -> FunctionRef {
    plane.resolve(input, None, IdKind::Namespaced).unwrap()
}

#[test]
fn create_answers_pending_and_leaves_the_function_active() {
    let (_dir, plane) = plane();
    let created = plane.create_function(&request("f"), &zip("x = 1")).unwrap();
    assert_eq!(created.state, FunctionState::Pending);
    assert_eq!(created.last_update, None);
    let stored = plane.get_function(&reference(&plane, "f")).unwrap().config;
    assert_eq!(stored.state, FunctionState::Active);
    assert_eq!(stored.last_update, Some(LastUpdateStatus::Successful));
    // Every change moves the revision, the transition to Active too.
    assert_ne!(stored.revision_id, created.revision_id);
}

#[test]
fn interrupted_transitions_are_finished_at_start() {
    let (_dir, plane) = plane();
    plane.create_function(&request("f"), &zip("x = 1")).unwrap();
    let r = reference(&plane, "f");
    // Simulate a crash between the two writes of an update.
    let mut stuck = plane.get_function(&r).unwrap().config;
    let revision = stuck.revision_id.clone();
    stuck.begin_update().unwrap();
    plane
        .store()
        .replace_function(&stuck, &revision, None)
        .unwrap();
    assert!(plane
        .update_configuration(&r, &FunctionUpdate::default(), None)
        .is_err());
    assert_eq!(plane.recover().unwrap(), 1);
    assert_eq!(
        plane.get_function(&r).unwrap().config.last_update,
        Some(LastUpdateStatus::Successful)
    );
    assert_eq!(plane.recover().unwrap(), 0);
    assert!(plane
        .update_configuration(&r, &FunctionUpdate::default(), None)
        .is_ok());
}

#[test]
fn duplicate_create_is_a_conflict() {
    let (_dir, plane) = plane();
    plane.create_function(&request("f"), &zip("x = 1")).unwrap();
    let err = plane
        .create_function(&request("f"), &zip("x = 2"))
        .unwrap_err();
    assert!(
        matches!(&err, ControlError::Conflict(m) if m == "Function already exist: f"),
        "{err}"
    );
}

#[test]
fn updates_change_revision_and_honour_revision_preconditions() {
    let (_dir, plane) = plane();
    let created = plane.create_function(&request("f"), &zip("x = 1")).unwrap();
    let r = reference(&plane, "f");
    let update = FunctionUpdate {
        memory_size: Some(256),
        ..FunctionUpdate::default()
    };
    let err = plane
        .update_configuration(&r, &update, Some("stale"))
        .unwrap_err();
    assert!(matches!(err, ControlError::PreconditionFailed));
    let current = plane.get_function(&r).unwrap().config.revision_id;
    let updated = plane
        .update_configuration(&r, &update, Some(&current))
        .unwrap();
    assert_eq!(updated.last_update, Some(LastUpdateStatus::InProgress));
    assert_ne!(updated.revision_id, created.revision_id);
    let stored = plane.get_function(&r).unwrap().config;
    assert_eq!(stored.memory_mb, 256);
    assert_eq!(stored.last_update, Some(LastUpdateStatus::Successful));

    let code = plane
        .update_code(
            &r,
            &UpdateCode {
                zip: zip("x = 2"),
                ..UpdateCode::default()
            },
        )
        .unwrap();
    assert_ne!(code.code.digest, created.code.digest);
    assert_ne!(code.revision_id, updated.revision_id);
}

#[test]
fn dry_run_changes_nothing() {
    let (_dir, plane) = plane();
    let created = plane.create_function(&request("f"), &zip("x = 1")).unwrap();
    let r = reference(&plane, "f");
    let dry = plane
        .update_code(
            &r,
            &UpdateCode {
                zip: zip("x = 2"),
                dry_run: true,
                ..UpdateCode::default()
            },
        )
        .unwrap();
    assert_ne!(dry.code.digest, created.code.digest);
    assert_eq!(
        plane.get_function(&r).unwrap().config.code.digest,
        created.code.digest
    );
}

#[test]
fn references_outside_this_server_are_not_found() {
    let (_dir, plane) = plane();
    plane.create_function(&request("f"), &zip("x = 1")).unwrap();
    let err = plane
        .resolve(
            "arn:aws:lambda:eu-west-1:000000000000:function:f",
            None,
            IdKind::Namespaced,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
    );
    let err = plane
        .resolve("111111111111:function:f", None, IdKind::Namespaced)
        .unwrap_err();
    assert!(matches!(err, ControlError::NotFound(_)));
    let err = plane.get_function(&reference(&plane, "f:1")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:f:1"
    );
    assert!(plane.get_function(&reference(&plane, "f:$LATEST")).is_ok());
}

#[test]
fn bad_packages_are_refused_before_anything_is_stored() {
    let (dir, plane) = plane();
    let err = plane
        .create_function(&request("f"), b"garbage")
        .unwrap_err();
    assert!(matches!(
        err,
        ControlError::Package(PackageError::Corrupt(_))
    ));
    assert!(plane.get_function(&reference(&plane, "f")).is_err());
    assert_eq!(
        std::fs::read_dir(dir.path().join("code/sha256"))
            .unwrap()
            .count(),
        0
    );
    let big = vec![0u8; limits::CODE_ZIPPED_MAX_BYTES as usize + 1];
    assert!(matches!(
        plane.create_function(&request("f"), &big),
        Err(ControlError::CodeTooLarge)
    ));
}

#[test]
fn versions_are_snapshots_with_numbers_never_reused() {
    let (_dir, plane) = plane();
    let mut req = request("f");
    req.publish = true;
    let created = plane.create_function(&req, &zip("x")).unwrap();
    assert_eq!(created.version, FunctionVersion::Published(1));
    let f = reference(&plane, "f");
    let again = plane
        .publish_version(&f, &PublishVersion::default())
        .unwrap();
    assert_eq!(again.version, FunctionVersion::Published(1));
    let update = FunctionUpdate {
        memory_size: Some(256),
        ..FunctionUpdate::default()
    };
    plane.update_configuration(&f, &update, None).unwrap();
    let second = plane
        .publish_version(&f, &PublishVersion::default())
        .unwrap();
    assert_eq!(second.version, FunctionVersion::Published(2));
    assert_eq!(second.memory_mb, 256);
    let v1 = plane
        .get_function(&reference(&plane, "f:1"))
        .unwrap()
        .config;
    assert_eq!(v1.memory_mb, 128);
    plane.delete_function(&reference(&plane, "f:2")).unwrap();
    let update = FunctionUpdate {
        memory_size: Some(512),
        ..FunctionUpdate::default()
    };
    plane.update_configuration(&f, &update, None).unwrap();
    let third = plane
        .publish_version(&f, &PublishVersion::default())
        .unwrap();
    assert_eq!(third.version, FunctionVersion::Published(3));
    let listed: Vec<String> = plane
        .list_versions(&f, None, None)
        .unwrap()
        .items
        .iter()
        .map(|c| c.version.to_string())
        .collect();
    assert_eq!(listed, ["$LATEST", "1", "3"]);
}

#[test]
fn aliases_route_only_to_published_versions_that_stay() {
    let (_dir, plane) = plane();
    plane.create_function(&request("f"), &zip("x")).unwrap();
    let f = reference(&plane, "f");
    plane
        .publish_version(&f, &PublishVersion::default())
        .unwrap();
    let to = |version: &str, weights: Vec<(String, f64)>| AliasUpdate {
        function_version: Some(version.into()),
        description: None,
        weights: Some(weights),
    };
    assert!(matches!(
        plane.create_alias(&f, "prod", &to("2", vec![])),
        Err(ControlError::NotFound(m)) if m.ends_with("function:f:2")
    ));
    plane.create_alias(&f, "prod", &to("1", vec![])).unwrap();
    assert!(matches!(
        plane.create_alias(&f, "prod", &to("1", vec![])),
        Err(ControlError::Conflict(_))
    ));
    assert!(matches!(
        plane.delete_function(&reference(&plane, "f:1")),
        Err(ControlError::Conflict(m)) if m.contains("[prod]")
    ));
    let prod = reference(&plane, "f:prod");
    assert_eq!(
        plane.invoke_target(&prod, 0.5).unwrap(),
        FunctionVersion::Published(1)
    );
    assert!(matches!(
        plane.update_alias(&f, "prod", &to("1", vec![]), Some("stale")),
        Err(ControlError::PreconditionFailed)
    ));
    plane.delete_alias(&f, "prod").unwrap();
    plane.delete_function(&reference(&plane, "f:1")).unwrap();
}

#[test]
fn tags_need_an_unqualified_function_arn() {
    let (_dir, plane) = plane();
    plane.create_function(&request("f"), &zip("x")).unwrap();
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:f";
    plane
        .tag_resource(arn, &[("a".to_string(), "1".to_string())].into())
        .unwrap();
    assert_eq!(plane.list_tags(arn).unwrap().len(), 1);
    assert!(matches!(
        plane.list_tags("f"),
        Err(ControlError::Invalid(ModelError::Constraints(_)))
    ));
    let err = plane.list_tags(&format!("{arn}:$LATEST")).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("Tags on function aliases and versions are not supported"));
    plane.untag_resource(arn, &["a".into()]).unwrap();
    assert!(plane.list_tags(arn).unwrap().is_empty());
    let missing = "arn:aws:lambda:us-east-1:000000000000:function:nope";
    assert!(matches!(
        plane.list_tags(missing),
        Err(ControlError::NotFound(_))
    ));
}

#[test]
fn delete_rules() {
    let (_dir, plane) = plane();
    plane.create_function(&request("f"), &zip("x")).unwrap();
    assert!(plane
        .delete_function(&reference(&plane, "f:$LATEST"))
        .is_err());
    assert!(plane.delete_function(&reference(&plane, "f:prod")).is_err());
    plane.delete_function(&reference(&plane, "f")).unwrap();
    let err = plane.delete_function(&reference(&plane, "f")).unwrap_err();
    assert!(matches!(err, ControlError::NotFound(_)));
}

#[test]
fn list_pages_validate_max_items() {
    let (_dir, plane) = plane();
    for name in ["a", "b", "c"] {
        plane.create_function(&request(name), &zip(name)).unwrap();
    }
    let page = plane.list_functions(None, Some(2)).unwrap();
    assert_eq!(page.functions.len(), 2);
    let rest = plane
        .list_functions(page.next_marker.as_deref(), Some(2))
        .unwrap();
    assert_eq!(rest.functions.len(), 1);
    assert!(plane.list_functions(None, Some(0)).is_err());
    assert!(plane.list_functions(None, Some(10_001)).is_err());
}
