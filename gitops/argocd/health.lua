-- Argo CD health check for keyturn.dev/JwtKeySet (argocd-cm key:
-- resource.customizations.health.keyturn.dev_JwtKeySet; docs/gitops.md shows the ConfigMap).
-- Argo CD runs it with the object in the global `obj` and expects {status = ..., message = ...}.
-- Plain Lua 5.1 (Argo CD embeds gopher-lua); the tests run it with lua5.4.
--
-- Precedence, most urgent first: a status older than the spec says nothing yet (Progressing);
-- Stalled (invalid spec, unsafe timings, a paused rollout or analysis), RolledBack and Degraded
-- need a person (Degraded, with the condition's reason and message); then Reconciling
-- (Progressing: publishing, rolling out, analysing) and Ready (Healthy).

local hs = {}

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c)
  local text = c.reason or c.type
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Keyturn to reconcile the key set"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for Keyturn to observe generation " .. tostring(generation)
  return hs
end

for _, kind in ipairs({"Stalled", "RolledBack", "Degraded"}) do
  local c = condition(status, kind)
  if is_true(c) then
    hs.status = "Degraded"
    hs.message = describe(c)
    return hs
  end
end

local reconciling = condition(status, "Reconciling")
if is_true(reconciling) then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
  return hs
end

local ready = condition(status, "Ready")
if is_true(ready) then
  hs.status = "Healthy"
  if status.currentKid ~= nil then
    hs.message = "Signing with " .. status.currentKid
  else
    hs.message = describe(ready)
  end
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the Ready condition"
end
return hs
