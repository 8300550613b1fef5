// What hullwatch needs beside the container registry (deployed at the registry's
// resource group scope): AcrPull for the Function App's identity, the registry's
// Event Grid system topic, and a subscription delivering ImagePushed and
// ImageDeleted to the Event Grid trigger function.

targetScope = 'resourceGroup'

@description('Name of the Azure Container Registry.')
param registryName string

@description('Name of the registry\'s Event Grid system topic.')
param systemTopicName string

@description('Principal id of the Function App\'s system-assigned identity.')
param principalId string

@description('Resource id of the Function App.')
param functionAppId string

@description('Name of the Event Grid trigger function.')
param functionName string

@description('Create the event subscription (the function must already be published).')
param deploySubscription bool

@description('Schema the events are delivered in.')
param eventDeliverySchema string

@description('Storage account that receives undeliverable events.')
param deadLetterStorageAccountId string

@description('Blob container for undeliverable events.')
param deadLetterContainerName string

param tags object = {}

// AcrPull: read manifests and blobs (and exchange an Entra token at /oauth2/exchange). Nothing more.
var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, acrPullRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: registry.location
  tags: tags
  // Its identity writes dead letters (granted on the dead-letter container only).
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: registry.id
    topicType: 'Microsoft.ContainerRegistry.Registries'
  }
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (deploySubscription) {
  parent: systemTopic
  name: 'hullwatch-image-events'
  properties: {
    eventDeliverySchema: eventDeliverySchema
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.ContainerRegistry.ImagePushed'
        'Microsoft.ContainerRegistry.ImageDeleted'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output systemTopicPrincipalId string = systemTopic.identity.principalId
