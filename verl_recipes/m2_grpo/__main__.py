from verl_recipes.m2_grpo.launch import run_cli

run_cli()
