"""The planner's rules, one module per part of the lifecycle, over one shared pass state."""
