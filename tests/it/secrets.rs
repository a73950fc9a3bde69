//! Secrets resolved from Secrets Manager (moto), once, when the configuration loads.

use aws_sdk_secretsmanager::Client;
use harness::{create_secret, load_config, secrets_client};
use market_data::secrets::{SecretStore, SecretsManager};
use secrecy::ExposeSecret;

async fn client() -> Client {
    secrets_client().await
}

#[tokio::test]
async fn a_finnhub_key_is_resolved_from_its_secret() {
    let client = client().await;
    let id = create_secret(&client, "sk-from-secrets-manager").await;
    let store = SecretsManager::new(client);
    let vars = [("FINNHUB_API_KEY_SECRET_ID", id.as_str())];
    let config = load_config(&vars, &store).await.unwrap();
    assert_eq!(
        config
            .providers
            .finnhub
            .unwrap()
            .api_key
            .unwrap()
            .expose_secret(),
        "sk-from-secrets-manager"
    );
}

#[tokio::test]
async fn an_rds_style_database_secret_becomes_a_url() {
    let client = client().await;
    let id = create_secret(
        &client,
        r#"{"engine":"postgres","username":"app","password":"s3cr:t/","host":"db.internal","port":5432,"dbname":"market"}"#,
    )
    .await;
    let store = SecretsManager::new(client);
    let vars = [("DATABASE_SECRET_ID", id.as_str())];
    let config = load_config(&vars, &store).await.unwrap();
    assert_eq!(
        config.database.unwrap().url.expose_secret(),
        "postgres://app:s3cr%3At%2F@db.internal:5432/market"
    );
}

#[tokio::test]
async fn a_secret_is_read_once_per_container() {
    let client = client().await;
    let id = create_secret(&client, "first").await;
    let store = SecretsManager::new(client.clone());
    assert_eq!(
        store.secret_string(&id).await.unwrap().expose_secret(),
        "first"
    );
    client
        .put_secret_value()
        .secret_id(&id)
        .secret_string("second")
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.secret_string(&id).await.unwrap().expose_secret(),
        "first"
    );
}

#[tokio::test]
async fn a_missing_secret_names_the_variable() {
    let store = SecretsManager::new(client().await);
    let vars = [("FINNHUB_API_KEY_SECRET_ID", "mdb_t_does_not_exist")];
    let err = load_config(&vars, &store).await.unwrap_err().to_string();
    assert!(err.starts_with("FINNHUB_API_KEY_SECRET_ID: "), "{err}");
    assert!(err.contains("mdb_t_does_not_exist"), "{err}");
}
