// hullwatch on Azure: the event-driven scanning backend in one resource group.
//
// Deploy (see infra/README.md):
//   az deployment group create -g RG -f infra/bicep/main.bicep -p registryResourceId=/subscriptions/.../registries/NAME
//
// Identity model: the Function App has one system-assigned managed identity and
// no secrets. Every connection (host storage, queues, blobs, Cosmos DB, Event
// Grid, the registry, Application Insights) is an Entra ID token for that
// identity, granted by the role assignments below and nothing broader.

targetScope = 'resourceGroup'

@description('Short lowercase name used in every resource name.')
@minLength(3)
@maxLength(12)
param baseName string = 'hullwatch'

@description('Region of the resources. Flex Consumption is available in a subset of regions.')
param location string = resourceGroup().location

@description('Resource id of the Azure Container Registry whose pushes and deletions are scanned. It may live in another resource group or subscription of the same tenant.')
param registryResourceId string

@description('Other registry hosts the backend may contact (the ACR above is always allowed). Events naming any other host are refused.')
param extraAllowedRegistries array = []

@description('Name of the Event Grid trigger function that receives ACR events (the function name in function_app.py).')
param acrEventFunctionName string = 'acr_events'

@description('Create the Event Grid subscription from the registry to the function. Event Grid checks that the function exists, so the first deployment (before the code is published) sets this to false.')
param deployRegistrySubscription bool = true

@description('Name of the registry\'s Event Grid system topic. A registry has at most one: if it already has one, give its name here and it is updated in place.')
param registrySystemTopicName string = ''

@description('Schema Event Grid delivers ACR events in. The trigger accepts both.')
@allowed([
  'EventGridSchema'
  'CloudEventSchemaV1_0'
])
param registryEventSchema string = 'EventGridSchema'

@description('Object ids of other Entra service principals that write findings and publish alerts (the AWS Lambda side\'s app registration). Each gets the Cosmos DB data role on the database and EventGrid Data Sender on the alerts topic, nothing else.')
param externalWriterPrincipalIds array = []

@description('Audience of the Pub/Sub push subscription that delivers Artifact Registry / Container Registry notifications to the gar_push function. When set, every push must carry a Google-signed OIDC token for this audience, else it is answered 401. Empty: no Google registry is wired up.')
param pubsubAudience string = ''

@description('Service account the Pub/Sub push subscription authenticates as; when set, the token must be issued to it (verified email).')
param pubsubServiceAccount string = ''

@description('Images pushed or pulled within this many days are rescanned daily.')
@minValue(1)
param rescanWindowDays int = 30

@description('Maximum Flex Consumption instances.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory per Flex Consumption instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Zone-redundant Flex Consumption plan (available in some regions only).')
param zoneRedundant bool = false

@description('Storage redundancy.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_ZRS'

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 90

@description('Tags applied to every resource.')
param tags object = {}

// ---------------------------------------------------------------------------
// Names and constants
// ---------------------------------------------------------------------------

var suffix = uniqueString(resourceGroup().id, baseName)
var storageAccountName = take('st${toLower(replace(baseName, '-', ''))}${suffix}', 24)
var functionAppName = '${baseName}-func-${suffix}'
var cosmosAccountName = toLower('${baseName}-cosmos-${suffix}')
var alertsTopicName = '${baseName}-alerts-${suffix}'
var databaseName = 'hullwatch'

var scanQueueName = 'scan-requests'
var inventoryContainerName = 'inventories'
var vulndbContainerName = 'vulndb'
var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'eventgrid-deadletter'

// Containers, partition keys and indexing policies exactly as the Cosmos adapter
// expects them (shared/stores/cosmos.py PARTITION_KEYS / INDEXING_POLICIES; a test
// checks that cosmos-containers.json matches): an image summary by digest, an
// image's findings and alerts together, a layer cache entry by its key, and the
// package index as one document per image.
var cosmosContainers = loadJsonContent('cosmos-containers.json')

// Built-in role definition ids (Azure RBAC).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}
// Cosmos DB data-plane role: Cosmos DB Built-in Data Contributor.
var cosmosDataContributorRoleId = '00000000-0000-0000-0000-000000000002'

// ---------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${baseName}-logs-${suffix}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${baseName}-appi-${suffix}'
  location: location
  kind: 'web'
  tags: tags
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    // Telemetry is accepted only with an Entra token (the Function App's identity).
    DisableLocalAuth: true
  }
}

// ---------------------------------------------------------------------------
// Storage: host storage, the scan queue, inventories, the vulnerability database
// ---------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    accessTier: 'Hot'
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource inventoryContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: inventoryContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource vulndbContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: vulndbContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// The poison queue (scan-requests-poison) is created by the Functions host on
// the first message that exhausts its retries.
resource scanQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: scanQueueName
}

// ---------------------------------------------------------------------------
// Cosmos DB (NoSQL, serverless): images, findings, alerts, caches
// ---------------------------------------------------------------------------

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: cosmosAccountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    capabilities: [
      {
        name: 'EnableServerless'
      }
    ]
    // Keys are off: only Entra identities with a data-plane role can read or write.
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
    backupPolicy: {
      type: 'Continuous'
      continuousModeProperties: {
        tier: 'Continuous7Days'
      }
    }
  }
}

resource cosmosDatabase 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: cosmos
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
  }
}

resource cosmosContainer 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [
  for c in cosmosContainers: {
    parent: cosmosDatabase
    name: c.name
    properties: {
      resource: {
        id: c.name
        partitionKey: {
          paths: [
            c.partitionKey
          ]
          kind: 'Hash'
          version: 2
        }
        indexingPolicy: c.indexingPolicy
      }
    }
  }
]

// ---------------------------------------------------------------------------
// Event Grid custom topic for alerts (CloudEvents 1.0 in)
// ---------------------------------------------------------------------------

resource alertsTopic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: alertsTopicName
  location: location
  tags: tags
  // An identity for delivering to destinations that require one (none are created here).
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    // Publishers authenticate with Entra ID (EventGrid Data Sender); access keys are off.
    disableLocalAuth: true
    minimumTlsVersionAllowed: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

// ---------------------------------------------------------------------------
// Function App (Flex Consumption, Python 3.11, system-assigned identity)
// ---------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${baseName}-plan-${suffix}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

var registrySubscriptionId = split(registryResourceId, '/')[2]
var registryResourceGroup = split(registryResourceId, '/')[4]
var registryName = last(split(registryResourceId, '/'))

resource acr 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
  scope: resourceGroup(registrySubscriptionId, registryResourceGroup)
}

var allowedRegistries = union([acr.properties.loginServer], extraAllowedRegistries)

// Pub/Sub push authentication, only when configured (an empty setting would be read as a value).
var pubsubAudienceSetting = empty(pubsubAudience) ? [] : [
  {
    name: 'HULLWATCH_PUBSUB_AUDIENCE'
    value: pubsubAudience
  }
]
var pubsubServiceAccountSetting = empty(pubsubServiceAccount) ? [] : [
  {
    name: 'HULLWATCH_PUBSUB_SERVICE_ACCOUNT'
    value: pubsubServiceAccount
  }
]
var pubsubSettings = concat(pubsubAudienceSetting, pubsubServiceAccountSetting)

// AcrPull, the registry's system topic and its subscription live beside the registry.
module registry 'modules/registry.bicep' = {
  name: 'hullwatch-registry-${suffix}'
  scope: resourceGroup(registrySubscriptionId, registryResourceGroup)
  params: {
    registryName: registryName
    systemTopicName: empty(registrySystemTopicName) ? '${registryName}-events' : registrySystemTopicName
    principalId: functionApp.identity.principalId
    functionAppId: functionApp.id
    functionName: acrEventFunctionName
    deploySubscription: deployRegistrySubscription
    eventDeliverySchema: registryEventSchema
    deadLetterStorageAccountId: storage.id
    deadLetterContainerName: deadLetterContainerName
    tags: tags
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: concat([
        // Host storage by identity: no connection string, no account key.
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'Authorization=AAD'
        }
        {
          name: 'HULLWATCH_REGISTRY_ALLOWLIST'
          value: join(allowedRegistries, ',')
        }
        {
          name: 'HULLWATCH_STORE'
          value: 'cosmos'
        }
        {
          name: 'HULLWATCH_COSMOS_ENDPOINT'
          value: cosmos.properties.documentEndpoint
        }
        {
          name: 'HULLWATCH_COSMOS_DATABASE'
          value: databaseName
        }
        {
          name: 'HULLWATCH_SCAN_QUEUE'
          value: scanQueueName
        }
        {
          name: 'HULLWATCH_BLOB_ENDPOINT'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'HULLWATCH_INVENTORY_CONTAINER'
          value: inventoryContainerName
        }
        {
          name: 'HULLWATCH_VULNDB_CONTAINER'
          value: vulndbContainerName
        }
        {
          name: 'HULLWATCH_EVENTGRID_TOPIC_ENDPOINT'
          value: alertsTopic.properties.endpoint
        }
        {
          name: 'HULLWATCH_RESCAN_WINDOW_DAYS'
          value: string(rescanWindowDays)
        }
      ], pubsubSettings)
    }
  }
}

// No FTP or SCM basic-auth publishing: deployments use Entra ID.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// ---------------------------------------------------------------------------
// Role assignments for the Function App's identity (data plane only)
// ---------------------------------------------------------------------------

// Host storage needs blob ownership (leases, timer locks, the deployment
// package); the scanner writes inventories and reads the vulnerability database.
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionApp.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// The queue trigger reads and deletes, triggers enqueue, the host creates the poison queue.
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionApp.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource topicSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(alertsTopic.id, functionApp.id, roles.eventGridDataSender)
  scope: alertsTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionApp.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Cosmos DB data plane, scoped to the hullwatch database only.
resource cosmosDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: cosmos
  name: guid(cosmos.id, functionApp.id, cosmosDataContributorRoleId)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosDataContributorRoleId}'
    principalId: functionApp.identity.principalId
    scope: '${cosmos.id}/dbs/${databaseName}'
  }
  dependsOn: [
    cosmosDatabase
  ]
}

// The AWS Lambda side (or any other writer) signs in as its own service
// principal and gets the same two data roles as the Function App.
resource externalCosmosDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = [
  for principalId in externalWriterPrincipalIds: {
    parent: cosmos
    name: guid(cosmos.id, principalId, cosmosDataContributorRoleId)
    properties: {
      roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosDataContributorRoleId}'
      principalId: principalId
      scope: '${cosmos.id}/dbs/${databaseName}'
    }
    dependsOn: [
      cosmosDatabase
    ]
  }
]

resource externalTopicSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in externalWriterPrincipalIds: {
    name: guid(alertsTopic.id, principalId, roles.eventGridDataSender)
    scope: alertsTopic
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
      principalId: principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// The registry's system topic writes undeliverable events to the dead-letter
// container, and nowhere else.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, registryResourceId, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: registry.outputs.systemTopicPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------

output functionAppName string = functionApp.name
output functionAppPrincipalId string = functionApp.identity.principalId
output storageAccountName string = storage.name
output cosmosEndpoint string = cosmos.properties.documentEndpoint
output cosmosDatabaseName string = databaseName
output alertsTopicEndpoint string = alertsTopic.properties.endpoint
output registryLoginServer string = acr.properties.loginServer
output scanQueueName string = scanQueueName
